/* sse-perf live view: the run's seconds from /events (Server-Sent Events), drawn as they come.
   Static code (no templating) so that the page can pin it with a CSP hash. Every value from the
   run is put in the page with textContent, never as HTML. */
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('live-data').textContent);
  var T = D.i18n;
  var nf1 = new Intl.NumberFormat(D.locale, {maximumFractionDigits: 1});
  var nf2 = new Intl.NumberFormat(D.locale, {maximumFractionDigits: 2});
  var nf0 = new Intl.NumberFormat(D.locale, {maximumFractionDigits: 0});

  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.locale = D.locale;
  Chart.defaults.color = '#475569';
  Chart.defaults.font.size = 11;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.borderColor = '#e8edf3';

  var state = {rows: [], view: null, charts: [], lastSecond: null, ended: null, warnings: [], seconds: [],
               stopSent: false};
  window.ssePerfLive = state;  // what the browser tests read

  var statusBadge = document.getElementById('status');
  var stopButton = document.getElementById('stop');

  function setStatus(kind, text) {
    statusBadge.dataset.state = kind;
    statusBadge.textContent = text;
  }

  function fmt(v, unit) {
    if (v === null || v === undefined || !isFinite(v)) { return '\u2014'; }
    var text = Math.abs(v) >= 100 ? nf1.format(v) : nf2.format(v);
    return unit ? text + ' ' + unit : text;
  }

  function hexToRgba(hex, alpha) {
    var n = parseInt(hex.slice(1), 16);
    return 'rgba(' + ((n >> 16) & 255) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + alpha + ')';
  }

  // A series' value in a row: a column, or one the view derives (the GPUs' mean, a limit line).
  function valueOf(row, col) {
    var rule = state.view && state.view.derive[col];
    if (!rule) {
      var v = row[col];
      return typeof v === 'number' && isFinite(v) ? v : null;
    }
    if (rule.mean) {
      var sum = 0, n = 0;
      rule.mean.forEach(function (c) {
        var x = row[c];
        if (typeof x === 'number' && isFinite(x)) { sum += x; n += 1; }
      });
      return n ? sum / n : null;
    }
    return rule.const === undefined ? null : rule.const;
  }

  function point(row, col) {  // second k covers [k, k+1): drawn at k + 0.5
    return {x: row.second + 0.5, y: valueOf(row, col)};
  }

  function secondsTick(v) { return nf0.format(v) + ' s'; }

  function buildChart(canvas, spec) {
    var datasets = spec.series.map(function (s, index) {
      var filled = !!spec.fill && index === 0;
      var ds = {
        label: s.label,
        data: state.rows.map(function (row) { return point(row, s.col); }),
        col: s.col,
        borderColor: s.color,
        backgroundColor: spec.type === 'bar' ? hexToRgba(s.color, 0.75) :
          hexToRgba(s.color, filled ? 0.15 : (spec.stacked ? 0.55 : 0.9)),
        borderWidth: spec.type === 'bar' ? 0 : 1.6,
        pointRadius: 0,
        pointHoverRadius: 3,
        stepped: spec.step ? 'middle' : false,
        fill: spec.stacked && spec.type === 'line' ? (index === 0 ? 'origin' : '-1') : (filled ? 'origin' : false),
        tension: 0,
        yAxisID: s.axis === 'y1' ? 'y1' : 'y',
        unit: s.unit === undefined ? spec.unit || '' : s.unit,
        isRef: !!s.ref
      };
      if (s.dash) {
        ds.borderDash = [6, 4];
        ds.borderWidth = 1.2;
      }
      if (spec.type === 'bar') {
        ds.barPercentage = 1.0;
        ds.categoryPercentage = 0.9;
      }
      return ds;
    });
    var scales = {
      x: {type: 'linear', min: 0, offset: false, stacked: !!spec.stacked,
          ticks: {maxRotation: 0, autoSkip: true, callback: secondsTick}, grid: {display: false}},
      y: {stacked: !!spec.stacked, beginAtZero: spec.ymin === 0,
          suggestedMax: spec.ymax === null ? undefined : spec.ymax,
          max: spec.ymax === 100 && spec.unit === '%' ? 100 : undefined,
          ticks: {maxTicksLimit: 6, callback: function (v) { return fmt(v); }},
          afterFit: function (scale) { scale.width = 58; }}
    };
    if (spec.y1) {
      scales.y1 = {position: 'right', beginAtZero: true, min: 0, max: spec.y1.max === null ? undefined : spec.y1.max,
                   grid: {drawOnChartArea: false},
                   ticks: {maxTicksLimit: 6, callback: function (v) { return fmt(v) + (spec.y1.unit ? ' ' + spec.y1.unit : ''); }},
                   afterFit: function (scale) { scale.width = 50; }};
    }
    return new Chart(canvas, {
      type: spec.type,
      data: {datasets: datasets},
      options: {
        parsing: false,
        normalized: true,
        interaction: {mode: 'index', intersect: false},
        scales: scales,
        plugins: {
          legend: {display: !!spec.legend, position: 'top', align: 'end',
                   labels: {boxWidth: 10, boxHeight: 10, padding: 8,
                            filter: function (item, data) { return !data.datasets[item.datasetIndex].isRef; }}},
          tooltip: {callbacks: {
            title: function (items) {
              return items.length ? T.second_n.replace('{n}', nf0.format(Math.floor(items[0].parsed.x))) : '';
            },
            label: function (item) { return item.dataset.label + ': ' + fmt(item.parsed.y, item.dataset.unit); }
          }}
        }
      }
    });
  }

  // The charts of the current view, drawn again from the rows kept (a new column came).
  function drawCharts() {
    state.charts.forEach(function (chart) { chart.destroy(); });
    state.charts = [];
    var root = document.getElementById('charts');
    while (root.firstChild) { root.removeChild(root.firstChild); }
    var groups = (state.view && state.view.groups) || [];
    document.getElementById('no-charts').hidden = groups.length > 0;
    groups.forEach(function (group) {
      var title = document.createElement('h3');
      title.className = 'group-title';
      title.textContent = group.title;
      root.appendChild(title);
      var grid = document.createElement('div');
      grid.className = 'chart-grid';
      root.appendChild(grid);
      group.charts.forEach(function (spec) {
        var figure = document.createElement('figure');
        figure.className = 'chart-card';
        var caption = document.createElement('figcaption');
        caption.textContent = spec.title;
        if (spec.subtitle) {
          var sub = document.createElement('span');
          sub.className = 'muted';
          sub.textContent = ' \u00b7 ' + spec.subtitle;
          caption.appendChild(sub);
        }
        var box = document.createElement('div');
        box.className = 'chart-box';
        var canvas = document.createElement('canvas');
        canvas.id = spec.id;
        canvas.setAttribute('role', 'img');
        canvas.setAttribute('aria-label', spec.title);
        box.appendChild(canvas);
        figure.appendChild(caption);
        figure.appendChild(box);
        grid.appendChild(figure);
        var chart = buildChart(canvas, spec);
        chart.$title = spec.title;
        state.charts.push(chart);
      });
    });
  }

  function showHeadline(cells) {
    var root = document.getElementById('headline');
    while (root.firstChild) { root.removeChild(root.firstChild); }
    cells.forEach(function (cell) {
      var card = document.createElement('div');
      card.className = 'card';
      var label = document.createElement('div');
      label.className = 'card-label';
      label.textContent = cell[0];
      var value = document.createElement('div');
      value.className = 'card-value';
      value.textContent = cell[1];
      card.appendChild(label);
      card.appendChild(value);
      root.appendChild(card);
    });
  }

  function onRow(message) {
    var data = JSON.parse(message.data);
    var row = data.row;
    if (state.lastSecond !== null && row.second <= state.lastSecond) { return; }  // a replay already drawn
    state.rows.push(row);
    state.seconds.push(row.second);
    if (state.rows.length > D.kept) { state.rows.shift(); }
    state.lastSecond = row.second;
    state.cells = data.cells;
    showHeadline(data.cells);
    if (!state.ended && !state.stopSent) {
      setStatus('running', T.status_running.replace('{n}', nf0.format(row.second + 1)));
    }
    state.charts.forEach(function (chart) {
      chart.data.datasets.forEach(function (ds) {
        ds.data.push(point(row, ds.col));
        if (ds.data.length > D.kept) { ds.data.shift(); }
      });
      chart.update('none');
    });
  }

  function onView(message) {
    state.view = JSON.parse(message.data);
    drawCharts();
  }

  function onWarning(message) {
    var data = JSON.parse(message.data);
    state.warnings.push(data.text);
    var item = document.createElement('li');
    item.textContent = data.text;
    document.getElementById('warnings').appendChild(item);
    document.getElementById('warnings-section').hidden = false;
  }

  var source = null;

  function onEnd(message) {
    state.ended = JSON.parse(message.data);
    setStatus('ended', T.status_ended);
    stopButton.disabled = true;
    var ended = document.getElementById('ended');
    var text = T.ended_at.replace('{code}', String(state.ended.exit_code))
      .replace('{run_dir}', state.ended.run_dir || '\u2014');
    if (state.ended.report) { text += ' \u00b7 ' + T.report_at.replace('{report}', state.ended.report); }
    ended.textContent = text;
    ended.hidden = false;
    if (source) { source.close(); }
  }

  function connect() {
    source = new EventSource('/events');
    source.addEventListener('message', onRow);
    source.addEventListener('view', onView);
    source.addEventListener('warning', onWarning);
    source.addEventListener('end', onEnd);
    source.addEventListener('error', function () {
      if (!state.ended) { setStatus('lost', T.status_lost); }  // EventSource tries again by itself
    });
  }

  stopButton.addEventListener('click', function () {
    if (state.stopSent || state.ended) { return; }
    if (!window.confirm(T.stop_confirm)) { return; }
    state.stopSent = true;
    stopButton.disabled = true;
    setStatus('stopping', T.status_stopping);
    fetch('/stop', {method: 'POST', headers: {'X-SSE-Perf-Token': D.token}, credentials: 'same-origin'})
      .then(function (response) {
        if (!response.ok) { throw new Error('HTTP ' + response.status); }
        stopButton.textContent = T.stop_sent;
      })
      .catch(function (error) {
        state.stopSent = false;
        stopButton.disabled = false;
        setStatus('lost', T.stop_failed.replace('{reason}', String(error.message || error)));
      });
  });

  connect();
}());
