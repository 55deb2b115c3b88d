/* sse-perf report: draws the charts from the JSON in #report-data.
   Static code (no templating) so that report.py can pin it with a CSP hash. */
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var T = D.i18n;
  var locale = D.locale || 'en-US';
  var nf1 = new Intl.NumberFormat(locale, {maximumFractionDigits: 1});
  var nf2 = new Intl.NumberFormat(locale, {maximumFractionDigits: 2});
  var nf0 = new Intl.NumberFormat(locale, {maximumFractionDigits: 0});

  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.locale = locale;
  Chart.defaults.color = '#475569';
  Chart.defaults.font.size = 11;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.borderColor = '#e8edf3';

  function fmt(v, unit) {
    if (v === null || v === undefined || !isFinite(v)) { return '\u2014'; }
    var text = Math.abs(v) >= 100 ? nf1.format(v) : nf2.format(v);
    return unit ? text + ' ' + unit : text;
  }

  // Second k covers [k, k+1): its value is drawn at k + 0.5 and the axis spans whole seconds.
  var xs = (D.ts && D.ts.x) || [];
  var xMin = xs.length ? Math.min(xs[0], 0) : 0;
  var xMax = xs.length ? xs[xs.length - 1] + 1 : 1;
  var longRun = xMax - xMin >= 600;

  function clock(s) {
    s = Math.round(s);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var mm = (h ? String(m).padStart(2, '0') : String(m)) + ':' + String(r).padStart(2, '0');
    return h ? h + ':' + mm : mm;
  }
  function secondsTick(v) {
    return longRun ? clock(v) : nf0.format(v) + ' s';
  }

  // Ticks on round numbers of seconds (10 s, 1 min, 5 min, 1 h...) at any zoom level.
  var STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  function roundSecondTicks(scale) {
    var span = scale.max - scale.min;
    var step = STEPS[STEPS.length - 1];
    for (var i = 0; i < STEPS.length; i++) {
      if (span / STEPS[i] <= 7) { step = STEPS[i]; break; }
    }
    var ticks = [];
    for (var v = Math.ceil(scale.min / step) * step; v <= scale.max + 1e-9; v += step) {
      ticks.push({value: v});
    }
    scale.ticks = ticks;
  }

  var tsCharts = [];
  var syncing = false;
  var resetButton = document.getElementById('reset-zoom');
  var rangeLabel = document.getElementById('zoom-range');

  function showRange(min, max) {
    var full = min <= xMin + 1e-9 && max >= xMax - 1e-9;
    if (rangeLabel) {
      rangeLabel.textContent = full ? T.range_full :
        T.range_shown.replace('{from}', secondsTick(min)).replace('{to}', secondsTick(max));
    }
    if (resetButton) { resetButton.disabled = full; }
  }

  // Zooming (drag, pinch) or panning one chart gives every time chart the same x range.
  function syncFrom(source) {
    if (syncing) { return; }
    syncing = true;
    try {
      var min = source.scales.x.min, max = source.scales.x.max;
      tsCharts.forEach(function (chart) {
        if (chart !== source) { chart.zoomScale('x', {min: min, max: max}, 'none'); }
      });
      showRange(min, max);
    } finally {
      syncing = false;
    }
  }

  function resetAll() {
    syncing = true;
    try {
      tsCharts.forEach(function (chart) { chart.resetZoom('none'); });
    } finally {
      syncing = false;
    }
    showRange(xMin, xMax);
  }

  var colsData = (D.ts && D.ts.cols) || {};

  function points(col) {
    var ys = colsData[col] || [];
    var out = new Array(xs.length);
    for (var i = 0; i < xs.length; i++) {
      out[i] = {x: xs[i] + 0.5, y: ys[i] === undefined ? null : ys[i]};
    }
    return out;
  }

  function hexToRgba(hex, alpha) {
    var n = parseInt(hex.slice(1), 16);
    return 'rgba(' + ((n >> 16) & 255) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + alpha + ')';
  }

  function buildTimeChart(spec) {
    var canvas = document.getElementById(spec.id);
    if (!canvas) { return; }
    var few = xs.length <= 90;
    // Thousands of one-second bars are thinner than a pixel: draw a stacked area instead.
    var type = spec.type === 'bar' && xs.length > 240 ? 'line' : spec.type;
    var datasets = spec.series.map(function (s, index) {
      var filled = !!spec.fill && index === 0;  // an area under the first series only
      var ds = {
        label: s.label,
        data: points(s.col),
        borderColor: s.color,
        backgroundColor: type === 'bar' ? hexToRgba(s.color, 0.75) :
          hexToRgba(s.color, filled ? 0.15 : (spec.stacked ? 0.55 : 0.9)),
        borderWidth: type === 'bar' ? 0 : (spec.stacked ? 0.8 : 1.6),
        pointRadius: type === 'bar' ? 0 : (few ? 2 : 0),
        pointHoverRadius: 3,
        spanGaps: false,
        stepped: spec.step ? 'middle' : false,
        fill: spec.stacked && type === 'line' ? (index === 0 ? 'origin' : '-1') : (filled ? 'origin' : false),
        tension: 0,
        yAxisID: s.axis === 'y1' ? 'y1' : 'y',
        unit: s.unit === undefined ? spec.unit || '' : s.unit,
        isRef: !!s.ref
      };
      if (s.dash) {  // a reference line (GPU memory total): dashed, thin, no points
        ds.borderDash = [6, 4];
        ds.borderWidth = 1.2;
        ds.pointRadius = 0;
        ds.backgroundColor = hexToRgba(s.color, 0.5);
      }
      if (type === 'bar') {
        ds.barPercentage = 1.0;
        ds.categoryPercentage = 0.9;
      }
      return ds;
    });
    var unit = spec.unit || '';
    var dual = !!spec.y1;
    var scales = {
      x: {
        type: 'linear', min: xMin, max: xMax, offset: false,
        stacked: !!spec.stacked,
        ticks: {maxRotation: 0, autoSkip: true, callback: secondsTick},
        afterBuildTicks: roundSecondTicks,
        grid: {display: false}
      },
      y: {
        stacked: !!spec.stacked,
        beginAtZero: spec.ymin === 0,
        suggestedMax: spec.ymax === null ? undefined : spec.ymax,
        max: spec.ymax === 100 && unit === '%' ? 100 : undefined,
        ticks: {maxTicksLimit: 6, callback: function (v) { return fmt(v); }},
        afterFit: function (scale) { scale.width = 58; }  // plot areas line up across charts
      }
    };
    if (dual) {  // a second quantity on the right (GPU utilisation %), ticks in its colour
      var right = spec.series.filter(function (s) { return s.axis === 'y1'; })[0];
      var left = spec.series.filter(function (s) { return s.axis !== 'y1'; })[0];
      if (left) { scales.y.ticks.color = left.color; }
      scales.y1 = {
        position: 'right',
        beginAtZero: true,
        min: 0,
        max: spec.y1.max === null ? undefined : spec.y1.max,
        grid: {drawOnChartArea: false},
        ticks: {maxTicksLimit: 6, color: right ? right.color : undefined,
                callback: function (v) { return fmt(v) + (spec.y1.unit ? ' ' + spec.y1.unit : ''); }},
        afterFit: function (scale) { scale.width = 50; }
      };
    }
    var chart = new Chart(canvas, {
      type: type,
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
          tooltip: {
            callbacks: {
              title: function (items) {
                if (!items.length) { return ''; }
                var k = Math.floor(items[0].parsed.x);
                return T.second_n.replace('{n}', nf0.format(k)) + (longRun ? ' (' + clock(k) + ')' : '');
              },
              label: function (item) { return item.dataset.label + ': ' + fmt(item.parsed.y, item.dataset.unit); }
            }
          },
          zoom: {
            limits: {x: {min: 'original', max: 'original', minRange: 2}},
            pan: {enabled: true, mode: 'x', modifierKey: 'shift',
                  onPanComplete: function (ctx) { syncFrom(ctx.chart); }},
            zoom: {
              mode: 'x',
              drag: {enabled: true, backgroundColor: 'rgba(37,99,235,0.12)', borderColor: 'rgba(37,99,235,0.6)', borderWidth: 1},
              pinch: {enabled: true},
              wheel: {enabled: false},
              onZoomComplete: function (ctx) { syncFrom(ctx.chart); }
            }
          }
        }
      }
    });
    canvas.addEventListener('dblclick', resetAll);
    tsCharts.push(chart);
  }

  function buildHistogram(spec) {
    var canvas = document.getElementById(spec.id);
    if (!canvas) { return; }
    var labels = [], ranges = [], values = spec.counts.slice();
    for (var i = 0; i < spec.counts.length; i++) {
      var lo = spec.lo + i * spec.width;
      labels.push(fmt(lo));
      ranges.push(fmt(lo) + ' \u2013 ' + fmt(lo + spec.width) + ' ' + spec.unit);
    }
    var colors = values.map(function () { return hexToRgba(spec.color, 0.8); });
    if (spec.overflow > 0) {
      var edge = spec.lo + spec.counts.length * spec.width;
      labels.push('\u2265 ' + fmt(edge));
      ranges.push('\u2265 ' + fmt(edge) + ' ' + spec.unit);
      values.push(spec.overflow);
      colors.push('rgba(100,116,139,0.75)');
    }
    new Chart(canvas, {
      type: 'bar',
      data: {labels: labels, datasets: [{label: spec.count_label, data: values, backgroundColor: colors,
                                         borderWidth: 0, barPercentage: 1.0, categoryPercentage: 0.94}]},
      options: {
        scales: {
          x: {ticks: {maxRotation: 0, autoSkip: true, maxTicksLimit: 8}, grid: {display: false},
              title: {display: true, text: spec.unit, padding: 0}},
          y: {beginAtZero: true, ticks: {maxTicksLimit: 6, precision: 0, callback: function (v) { return nf0.format(v); }}}
        },
        plugins: {
          legend: {display: false},
          zoom: false,
          tooltip: {callbacks: {
            title: function (items) { return items.length ? ranges[items[0].dataIndex] : ''; },
            label: function (item) { return spec.count_label + ': ' + nf0.format(item.parsed.y); }
          }}
        }
      }
    });
  }

  ((D.ts && D.ts.charts) || []).forEach(buildTimeChart);
  (D.hist || []).forEach(buildHistogram);
  if (resetButton) { resetButton.addEventListener('click', resetAll); }
  showRange(xMin, xMax);

  window.addEventListener('beforeprint', function () {
    Object.values(Chart.instances).forEach(function (c) { c.resize(); });
  });
  window.ssePerfReport = {timeCharts: tsCharts, reset: resetAll, range: [xMin, xMax]};
})();
