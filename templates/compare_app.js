/* sse-perf comparison report: draws the charts from the JSON in #compare-data.
   Static code (no templating) so that compare_report.py can pin it with a CSP hash.
   One colour per run, the same in every chart. */
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('compare-data').textContent);
  var T = D.i18n;
  var RUNS = D.runs;
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

  var GOOD = '#15803d', BAD = '#b91c1c', MUTED = '#64748b';

  function fmt(v, unit) {
    if (v === null || v === undefined || !isFinite(v)) { return '\u2014'; }
    var a = Math.abs(v);
    var text = a >= 100 ? nf0.format(v) : (a >= 10 ? nf1.format(v) : nf2.format(v));
    return unit ? text + ' ' + unit : text;
  }
  function runName(i) { return '[' + (i + 1) + '] ' + RUNS[i].label; }
  function shortName(i, max) {  // cut on the left: folder names end with the model name
    var label = RUNS[i].label, head = '[' + (i + 1) + '] ';
    return head.length + label.length > max ? head + '\u2026' + label.slice(label.length - (max - head.length - 1)) : head + label;
  }
  function rgba(hex, alpha) {
    var n = parseInt(hex.slice(1), 16);
    return 'rgba(' + ((n >> 16) & 255) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + alpha + ')';
  }
  var legend = {display: false};  // the HTML legend above each chart grid names the runs and their colours

  // ------------------------------------------------------------ at a glance: one bar per run
  var barCharts = [];
  function barLabels(spec) {  // the value and its change at the end of each bar
    return {id: 'ssePerfBarLabels', afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx, meta = chart.getDatasetMeta(0), area = chart.chartArea;
      ctx.save();
      ctx.textBaseline = 'middle';
      meta.data.forEach(function (bar, i) {
        if (spec.values[i] === null) { return; }
        var text = spec.texts[i];
        var change = i > 0 && spec.changes[i] ? '  ' + spec.changes[i] : '';
        ctx.font = '700 11px ' + Chart.defaults.font.family;
        var w1 = ctx.measureText(text).width;
        ctx.font = '600 11px ' + Chart.defaults.font.family;
        var w2 = ctx.measureText(change).width;
        var x = bar.x + 6;
        if (x + w1 + w2 > area.right + 6) { x = Math.max(area.left + 4, bar.x - 6 - w1 - w2); }
        var inside = x < bar.x;
        ctx.font = '700 11px ' + Chart.defaults.font.family;
        ctx.fillStyle = inside ? '#fff' : '#0f172a';
        ctx.fillText(text, x, bar.y);
        if (change) {
          var v = spec.verdicts[i];
          ctx.font = '600 11px ' + Chart.defaults.font.family;
          ctx.fillStyle = inside ? '#fff' : (v === 'better' ? GOOD : (v === 'worse' ? BAD : MUTED));
          ctx.fillText(change, x + w1, bar.y);
        }
      });
      ctx.restore();
    }};
  }
  function buildBar(spec) {
    var canvas = document.getElementById(spec.id);
    if (!canvas) { return; }
    var top = Math.max.apply(null, spec.values.map(function (v) { return v === null ? 0 : Math.abs(v); }));
    var chart = new Chart(canvas, {  // room right of the longest bar for its value and change
      type: 'bar',
      data: {labels: RUNS.map(function (r, i) { return shortName(i, 24); }),
             datasets: [{data: spec.values, backgroundColor: RUNS.map(function (r) { return rgba(r.color, 0.85); }),
                         borderColor: RUNS.map(function (r) { return r.color; }), borderWidth: 0,
                         barPercentage: 0.82, categoryPercentage: 0.9}]},
      plugins: [barLabels(spec)],
      options: {
        indexAxis: 'y',
        layout: {padding: {right: 8}},
        scales: {
          x: {beginAtZero: true, suggestedMax: top > 0 ? top * 1.9 : undefined, ticks: {maxTicksLimit: 5, callback: function (v) { return fmt(v); }}},
          y: {grid: {display: false}, ticks: {font: {size: 11}}}
        },
        plugins: {
          legend: {display: false},
          tooltip: {callbacks: {
            title: function (items) { return items.length ? runName(items[0].dataIndex) : ''; },
            label: function (item) {
              var i = item.dataIndex, change = i > 0 && spec.changes[i] ? ' (' + spec.changes[i] + ')' : '';
              return spec.texts[i] + change;
            }
          }}
        }
      }
    });
    chart.$spec = spec;
    barCharts.push(chart);
  }

  // ------------------------------------------------------------ over time: one line per run
  var tsCharts = [];
  var smoothWindow = (D.ts && D.ts.smoothing) || 1;

  function smooth(ys, w) {
    if (w <= 1) { return ys; }
    var half = Math.floor(w / 2), out = new Array(ys.length);
    for (var i = 0; i < ys.length; i++) {
      var sum = 0, n = 0;
      for (var j = Math.max(0, i - half); j <= Math.min(ys.length - 1, i + half); j++) {
        if (ys[j] !== null && ys[j] !== undefined) { sum += ys[j]; n++; }
      }
      out[i] = n ? sum / n : null;
    }
    return out;
  }
  function tsPoints(run, key) {
    var ys = smooth(run.cols[key] || [], smoothWindow), out = [];
    for (var i = 0; i < run.x.length; i++) {
      out.push({x: run.x[i], y: ys[i] === undefined ? null : ys[i]});
    }
    return out;
  }
  function buildTs(spec) {
    var canvas = document.getElementById(spec.id);
    if (!canvas) { return; }
    var datasets = D.ts.runs.map(function (run, i) {
      return {label: RUNS[i].label, data: tsPoints(run, spec.key), borderColor: RUNS[i].color,
              backgroundColor: rgba(RUNS[i].color, 0.9), borderWidth: i === 0 ? 2.2 : 1.8,
              pointRadius: run.x.length <= 40 ? 2.5 : 0, pointHoverRadius: 4, spanGaps: true, tension: 0.15};
    });
    var chart = new Chart(canvas, {
      type: 'line',
      data: {datasets: datasets},
      options: {
        parsing: false,
        interaction: {mode: 'nearest', axis: 'x', intersect: false},
        scales: {
          x: {type: 'linear', min: 0, ticks: {maxRotation: 0, maxTicksLimit: 8,
              callback: function (v) { return nf0.format(v) + ' s'; }}, grid: {display: false}},
          y: {beginAtZero: true, max: spec.unit === '%' ? 100 : undefined,
              ticks: {maxTicksLimit: 6, callback: function (v) { return fmt(v); }},
              afterFit: function (scale) { scale.width = 54; }}
        },
        plugins: {
          legend: legend,
          tooltip: {callbacks: {
            title: function (items) { return items.length ? nf0.format(Math.floor(items[0].parsed.x)) + ' s' : ''; },
            label: function (item) { return runName(item.datasetIndex) + ': ' + fmt(item.parsed.y, spec.unit); }
          }}
        }
      }
    });
    chart.$spec = spec;
    tsCharts.push(chart);
  }
  function setSmoothing(w) {
    smoothWindow = w;
    tsCharts.forEach(function (chart) {
      chart.data.datasets.forEach(function (ds, i) { ds.data = tsPoints(D.ts.runs[i], chart.$spec.key); });
      chart.update('none');
    });
    Array.prototype.forEach.call(document.querySelectorAll('#smoothing button'), function (b) {
      b.setAttribute('aria-pressed', Number(b.getAttribute('data-window')) === w ? 'true' : 'false');
    });
  }

  // ------------------------------------------------------------ distributions: CDF per run
  var cdfCharts = [];
  var guides = {
    id: 'ssePerfGuides',
    beforeDatasetsDraw: function (chart) {
      var area = chart.chartArea, ctx = chart.ctx, y = chart.scales.y;
      ctx.save();
      ctx.font = '600 10px ' + Chart.defaults.font.family;
      ctx.textBaseline = 'bottom';
      [50, 95].forEach(function (q) {
        var py = y.getPixelForValue(q);
        ctx.strokeStyle = 'rgba(100,116,139,0.55)';
        ctx.lineWidth = 1;
        ctx.setLineDash([4, 4]);
        ctx.beginPath(); ctx.moveTo(area.left, py); ctx.lineTo(area.right, py); ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = '#64748b';
        ctx.fillText('p' + q, area.left + 4, py - 2);
      });
      ctx.restore();
    }
  };
  function buildCdf(spec) {
    var canvas = document.getElementById(spec.id);
    if (!canvas) { return; }
    var datasets = spec.series.map(function (s, i) {
      return {label: RUNS[i].label, data: s.points.map(function (p) { return {x: p[0], y: p[1]}; }),
              borderColor: RUNS[i].color, backgroundColor: RUNS[i].color, borderWidth: 2,
              pointRadius: 0, pointHoverRadius: 3, stepped: s.stepped ? 'before' : false, tension: 0};
    });
    var chart = new Chart(canvas, {
      type: 'line',
      data: {datasets: datasets},
      plugins: [guides],
      options: {
        parsing: false,
        interaction: {mode: 'nearest', intersect: false},
        scales: {
          x: {type: 'linear', beginAtZero: false, grace: '2%', max: spec.xmax === null ? undefined : spec.xmax,
              ticks: {maxTicksLimit: 7, callback: function (v) { return fmt(v); }},
              title: {display: true, text: 'ms', padding: 0}},
          y: {min: 0, max: 100, ticks: {stepSize: 25, callback: function (v) { return v + ' %'; }},
              title: {display: true, text: T.cdf_y, padding: 0}}
        },
        plugins: {
          legend: legend,
          tooltip: {callbacks: {
            label: function (item) {
              return runName(item.datasetIndex) + ': ' + nf1.format(item.parsed.y) + ' % \u2264 ' + fmt(item.parsed.x, 'ms');
            }
          }}
        }
      }
    });
    cdfCharts.push(chart);
  }

  // ------------------------------------------------------------ sweep curves: a line per run
  var sweepCharts = [];
  var pointLabels = {
    id: 'ssePerfPointLabels',
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx, area = chart.chartArea;
      ctx.save();
      ctx.font = '600 10px ' + Chart.defaults.font.family;
      ctx.textBaseline = 'bottom';
      chart.data.datasets.forEach(function (ds, i) {
        if (!chart.isDatasetVisible(i)) { return; }
        chart.getDatasetMeta(i).data.forEach(function (el, k) {
          var p = ds.data[k];
          if (!p || !p.label) { return; }
          var w = ctx.measureText(p.label).width;
          var x = el.x + 6 + w > area.right ? el.x - 6 - w : el.x + 6;
          ctx.fillStyle = 'rgba(255,255,255,0.8)';
          ctx.fillRect(x - 1, el.y - 15, w + 2, 12);
          ctx.fillStyle = ds.borderColor;
          ctx.fillText(p.label, x, el.y - 4);
        });
      });
      ctx.restore();
    }
  };
  function buildSweep(spec) {
    var canvas = document.getElementById(spec.id);
    if (!canvas) { return; }
    var datasets = D.sweep.lines.map(function (line, i) {
      var data = line.filter(function (p) { return p.x !== null && p[spec.family] !== null; })
        .map(function (p) { return {x: p.x, y: p[spec.family], label: p.label}; });
      return {label: RUNS[i].label, data: data, showLine: true, borderColor: RUNS[i].color,
              backgroundColor: RUNS[i].color, borderWidth: 2, pointRadius: 4.5, pointHoverRadius: 6};
    });
    var chart = new Chart(canvas, {
      type: 'scatter',
      data: {datasets: datasets},
      plugins: [pointLabels],
      options: {
        parsing: false,
        layout: {padding: {top: 12, right: 10}},
        scales: {
          x: {type: 'linear', beginAtZero: true, grace: '8%', title: {display: true, text: T.curve_x, padding: 0},
              ticks: {maxTicksLimit: 7, callback: function (v) { return fmt(v); }}},
          y: {beginAtZero: true, grace: '10%', title: {display: true, text: 'ms', padding: 0},
              ticks: {maxTicksLimit: 6, callback: function (v) { return fmt(v); }}}
        },
        plugins: {
          legend: legend,
          tooltip: {callbacks: {
            title: function (items) { return items.length ? runName(items[0].datasetIndex) + ' \u00b7 ' + items[0].raw.label : ''; },
            label: function (item) { return [T.curve_x + ': ' + fmt(item.parsed.x), fmt(item.parsed.y, 'ms')]; }
          }}
        }
      }
    });
    sweepCharts.push(chart);
  }

  (D.bars || []).forEach(buildBar);
  ((D.ts && D.ts.charts) || []).forEach(buildTs);
  (D.cdf || []).forEach(buildCdf);
  if (D.sweep) { D.sweep.charts.forEach(buildSweep); }
  Array.prototype.forEach.call(document.querySelectorAll('#smoothing button'), function (b) {
    b.addEventListener('click', function () { setSmoothing(Number(b.getAttribute('data-window'))); });
  });
  window.addEventListener('beforeprint', function () {
    Object.values(Chart.instances).forEach(function (c) { c.resize(); });
  });
  window.ssePerfCompare = {bars: barCharts, timeCharts: tsCharts, cdfCharts: cdfCharts, sweepCharts: sweepCharts,
                           runs: RUNS.length, setSmoothing: setSmoothing};
})();
