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

  // Reorder by dragging a card by its heading (the Move up / Move down
  // buttons do the same from the keyboard). Dropping submits the move as a
  // plain form, so the server checks it like any change.
  var csrf = document.querySelector('input[name="csrf_token"]');
  var dragged = null;
  document.querySelectorAll('li.step-card[data-key]').forEach(function (card) {
    var handle = card.querySelector('summary');
    if (!handle) return;
    handle.setAttribute('draggable', 'true');
    handle.addEventListener('dragstart', function (e) {
      dragged = card;
      card.classList.add('dragging');
      e.dataTransfer.effectAllowed = 'move';
      e.dataTransfer.setData('text/plain', card.getAttribute('data-key'));
    });
    handle.addEventListener('dragend', function () {
      card.classList.remove('dragging');
      dragged = null;
    });
    card.addEventListener('dragover', function (e) {
      if (dragged && dragged !== card) { e.preventDefault(); card.classList.add('drop-target'); }
    });
    card.addEventListener('dragleave', function () { card.classList.remove('drop-target'); });
    card.addEventListener('drop', function (e) {
      e.preventDefault();
      card.classList.remove('drop-target');
      if (!dragged || dragged === card || !csrf) return;
      var form = document.createElement('form');
      form.method = 'post';
      form.action = dragged.querySelector('form.step-form').getAttribute('action');
      var fields = { csrf_token: csrf.value, op: 'move_to', to: card.getAttribute('data-index') };
      Object.keys(fields).forEach(function (k) {
        var input = document.createElement('input');
        input.type = 'hidden';
        input.name = k;
        input.value = fields[k];
        form.appendChild(input);
      });
      document.body.appendChild(form);
      form.submit();
    });
  });
})();
