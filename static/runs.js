// The runs list refreshes itself every 5 seconds while the box is ticked
// and the tab is visible: the rows are fetched again with the same filter
// and swapped in place (the filter form and the focus are left alone).
(function () {
  'use strict';
  var box = document.getElementById('live');
  var rows = document.getElementById('runs-rows');
  var status = document.getElementById('live-status');
  if (!box || !rows) return;
  function refresh() {
    if (!box.checked || document.hidden) return;
    if (rows.contains(document.activeElement)) return;
    fetch(window.location.href, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var fresh = doc.getElementById('runs-rows');
        if (fresh && fresh.innerHTML !== rows.innerHTML) rows.innerHTML = fresh.innerHTML;
        if (status) status.textContent = 'Updated ' + new Date().toLocaleTimeString();
      })
      .catch(function () { if (status) status.textContent = 'Could not update; will try again.'; });
  }
  setInterval(refresh, 5000);
})();
