// The builder's little JavaScript. Everything works without it: a chosen
// field and a finishing touch are applied when the card is saved. With it,
// choosing a field inserts its pill where the cursor was, a lookup table's
// first column is filled with the values that field can take, and a
// finishing touch shows the controls it needs at once.
(function () {
  'use strict';

  // Where the cursor was in each value box when it lost the focus (opening
  // a select takes the focus away).
  var cursors = new WeakMap();
  document.addEventListener('focusout', function (e) {
    var t = e.target;
    if (t.matches && t.matches('input.value')) {
      cursors.set(t, [t.selectionStart, t.selectionEnd]);
    }
  });

  function fillLookup(row, values) {
    var table = document.querySelector('[data-shape-lookup="' + row + '"]');
    if (!table || !values) return;
    var cells = table.querySelectorAll('input[name*=".from."]');
    var wanted = values.split(',');
    var have = [];
    cells.forEach(function (c) { if (c.value) have.push(c.value); });
    var i = 0;
    cells.forEach(function (c) {
      while (i < wanted.length && have.indexOf(wanted[i]) >= 0) i++;
      if (!c.value && i < wanted.length) { c.value = wanted[i]; have.push(wanted[i]); i++; }
    });
  }

  function insertPill(select) {
    var input = document.getElementById(select.getAttribute('data-pill-for'));
    if (!input || !select.value) return;
    var pill = '{{' + select.value + '}}';
    var pos = cursors.get(input) || [input.value.length, input.value.length];
    var start = Math.min(pos[0], input.value.length);
    var end = Math.min(pos[1], input.value.length);
    input.value = input.value.slice(0, start) + pill + input.value.slice(end);
    var option = select.options[select.selectedIndex];
    fillLookup(select.getAttribute('data-row'), option && option.getAttribute('data-values'));
    select.value = '';
    input.focus();
    input.setSelectionRange(start + pill.length, start + pill.length);
  }

  function showShape(select) {
    var id = select.getAttribute('data-shape');
    var arg = document.querySelector('[data-shape-arg="' + id + '"]');
    var table = document.querySelector('[data-shape-lookup="' + id + '"]');
    var v = select.value;
    if (arg) arg.hidden = !(v === 'phone' || v === 'date' || v === 'default');
    if (table) table.hidden = v !== 'lookup';
  }

  document.addEventListener('change', function (e) {
    var t = e.target;
    if (!t.matches) return;
    if (t.matches('select[data-pill-for]')) insertPill(t);
    if (t.matches('select[data-shape]')) showShape(t);
  });
})();
