// The documentation page's Print button (the page prints well without it:
// the browser's own Print uses the same print stylesheet).
document.querySelectorAll('[data-print]').forEach((b) => {
  b.addEventListener('click', () => window.print());
});
