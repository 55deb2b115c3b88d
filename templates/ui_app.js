/* sse-perf console (sse-perf ui). Static code, pinned by the page's CSP hash. Every call that
   changes something is a POST with the token in the X-SSE-Perf-Token header; whatever a call
   returns goes into the page with textContent only. */
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('ui-data').textContent);
  var T = D.i18n;
  var ui = {checks: 0, started: null, errors: {}};
  window.ssePerfUi = ui;  // what the browser tests read

  function post(path, body) {
    return fetch(path, {method: 'POST', credentials: 'same-origin',
                        headers: {'Content-Type': 'application/json', 'X-SSE-Perf-Token': D.token},
                        body: JSON.stringify(body || {})})
      .then(function (response) {
        return response.json().then(function (data) { return {status: response.status, data: data}; });
      });
  }

  function formData(form) {
    var out = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) { return; }
      out[el.name] = el.type === 'checkbox' ? el.checked : el.value;
    });
    return out;
  }

  function showErrors(form, errors) {
    ui.errors = errors || {};
    Array.prototype.forEach.call(form.querySelectorAll('[data-error]'), function (span) {
      var text = ui.errors[span.dataset.error] || '';
      span.textContent = text;
      var label = span.closest('label');
      if (label) { label.classList.toggle('invalid', !!text); }
    });
  }

  // -- Runs: the filters (a page of its own, no form submission: the CSP allows none) --
  var filters = document.getElementById('filters');
  if (filters) {
    filters.addEventListener('submit', function (event) {
      event.preventDefault();
      var params = new URLSearchParams();
      Array.prototype.forEach.call(filters.elements, function (el) {
        if (el.name && el.value) { params.set(el.name, el.value); }
      });
      window.location.href = '/' + (params.toString() ? '?' + params.toString() : '');
    });
  }

  // -- Runs: two or more selected open the comparison --
  var compare = document.getElementById('compare');
  if (compare) {
    var picks = document.querySelectorAll('.pick');
    var chosen = function () {
      return Array.prototype.filter.call(picks, function (p) { return p.checked; }).map(function (p) { return p.value; });
    };
    Array.prototype.forEach.call(picks, function (p) {
      p.addEventListener('change', function () { compare.disabled = chosen().length < 2; });
    });
    compare.addEventListener('click', function () {
      window.location.href = '/compare?ids=' + encodeURIComponent(chosen().join(','));
    });
  }

  // -- New run --
  var runForm = document.getElementById('run-form');
  if (runForm) {
    var command = document.getElementById('command');
    var state = document.getElementById('check-state');
    var timer = null;
    var check = function () {
      var asked = ++ui.checks;
      post('/api/check', formData(runForm)).then(function (answer) {
        if (asked !== ui.checks) { return; }  // a later edit was checked meanwhile
        showErrors(runForm, answer.data.errors);
        command.textContent = answer.data.command || '';
        state.textContent = answer.data.ok === false ? '' : T.check_ok;
        ui.checked = asked;
      });
    };
    var later = function () {
      clearTimeout(timer);
      timer = setTimeout(check, 300);
    };
    runForm.addEventListener('input', later);
    runForm.addEventListener('change', later);
    var fill = function (name) {
      var target = (D.targets || []).filter(function (t) { return t.name === name; })[0];
      if (!target) { return; }
      runForm.elements.demo.checked = false;
      ['base_url', 'api', 'model', 'key_file', 'key_env'].forEach(function (field) {
        runForm.elements[field].value = target[field] || (field === 'api' ? runForm.elements.api.value : '');
      });
      runForm.elements.headers.value = (target.headers || []).join('\n');
      later();
    };
    document.getElementById('target-pick').addEventListener('change', function (event) { fill(event.target.value); });
    if (D.chosen) { fill(D.chosen); }
    document.getElementById('copy').addEventListener('click', function () {
      var done = function () { document.getElementById('copy').textContent = T.copied; };
      if (navigator.clipboard) { navigator.clipboard.writeText(command.textContent).then(done, function () {}); }
    });
    runForm.addEventListener('submit', function (event) {
      event.preventDefault();
      var start = document.getElementById('start');
      start.disabled = true;
      state.textContent = T.starting;
      post('/api/start', formData(runForm)).then(function (answer) {
        start.disabled = false;
        state.textContent = '';
        showErrors(runForm, answer.data.errors);
        if (answer.data.ok !== false && answer.data.live_url) {
          ui.started = answer.data;
          command.textContent = answer.data.command;
          window.location.href = answer.data.live_url;  // its live view: charts, figures, Stop
        }
      });
    });
    var active = document.getElementById('active');
    var refresh = function () {
      post('/api/runs', {}).then(function (answer) {
        var runs = answer.data.runs || [];
        ui.runs = runs;
        if (!runs.length) { return; }
        while (active.firstChild) { active.removeChild(active.firstChild); }
        runs.forEach(function (run) {
          var item = document.createElement('li');
          var code = document.createElement('code');
          code.textContent = run.command;
          item.appendChild(code);
          item.appendChild(document.createTextNode(' · ' + (run.exit_code === null ? T.state_running :
            T.state_ended.replace('{code}', String(run.exit_code))) + ' · '));
          if (run.exit_code === null && run.live_url) {
            var link = document.createElement('a');
            link.href = run.live_url;
            link.textContent = T.open_live;
            item.appendChild(link);
            item.appendChild(document.createTextNode(' · '));
            var stop = document.createElement('button');
            stop.type = 'button';
            stop.className = 'linkish';
            stop.textContent = T.stop;
            stop.addEventListener('click', function () { post('/api/stop', {number: run.number}).then(refresh); });
            item.appendChild(stop);
          }
          active.appendChild(item);
        });
      });
    };
    refresh();
    setInterval(refresh, 2000);
  }

  // -- Targets --
  var targetForm = document.getElementById('target-form');
  if (targetForm) {
    targetForm.addEventListener('submit', function (event) {
      event.preventDefault();
      post('/api/targets/save', formData(targetForm)).then(function (answer) {
        showErrors(targetForm, answer.data.errors);
        if (answer.data.ok !== false) {
          document.getElementById('target-state').textContent = T.saved;
          window.location.reload();
        }
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll('button.delete'), function (button) {
      button.addEventListener('click', function () {
        post('/api/targets/delete', {name: button.dataset.name}).then(function () { window.location.reload(); });
      });
    });
  }
}());
