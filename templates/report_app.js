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

  // Warm-up, cooldown, sweep-level and saturation bands behind the series of every time chart.
  // Drawn from the x scale on each draw, so they follow zoom and pan; chart.$bands keeps what
  // was drawn (pixel ranges) for the browser tests.
  var BANDS = (D.ts && D.ts.bands) || null;
  var SATURATED = (BANDS && BANDS.saturated) || [];
  var cooldownFill = null;
  function cooldownPattern(ctx) {
    if (!cooldownFill) {
      var tile = document.createElement('canvas');
      tile.width = tile.height = 8;
      var t = tile.getContext('2d');
      t.fillStyle = 'rgba(100,116,139,0.07)';
      t.fillRect(0, 0, 8, 8);
      t.strokeStyle = 'rgba(100,116,139,0.35)';
      t.lineWidth = 1.5;
      t.beginPath();
      t.moveTo(-2, 10); t.lineTo(10, -2);
      t.moveTo(-2, 2); t.lineTo(2, -2);
      t.moveTo(6, 10); t.lineTo(10, 6);
      t.stroke();
      cooldownFill = ctx.createPattern(tile, 'repeat');
    }
    return cooldownFill;
  }
  var bandsPlugin = {
    id: 'ssePerfBands',
    beforeDatasetsDraw: function (chart) {
      var x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx, drawn = [];
      if (!BANDS || !x || !area) { return; }
      ctx.save();
      ctx.beginPath();
      ctx.rect(area.left, area.top, area.right - area.left, area.bottom - area.top);
      ctx.clip();
      function span(band) {
        var x0 = Math.max(area.left, x.getPixelForValue(band.from));
        var x1 = Math.min(area.right, x.getPixelForValue(band.to));
        return x1 > x0 ? [x0, x1] : null;
      }
      function fill(band, style, kind) {
        var px = span(band);
        if (!px) { return; }
        ctx.fillStyle = style;
        ctx.fillRect(px[0], area.top, px[1] - px[0], area.bottom - area.top);
        drawn.push({kind: kind, from: band.from, to: band.to, x0: px[0], x1: px[1]});
      }
      BANDS.levels.forEach(function (band, i) {
        if (i % 2 === 1) { fill(band, 'rgba(37,99,235,0.06)', 'level'); }
      });
      BANDS.warmup.forEach(function (band) { fill(band, 'rgba(100,116,139,0.20)', 'warmup'); });
      BANDS.cooldown.forEach(function (band) { fill(band, cooldownPattern(ctx), 'cooldown'); });
      SATURATED.forEach(function (band) {  // the load generator's own delay is in the timings from here on
        fill(band, 'rgba(220,38,38,0.10)', 'saturated');
        var x0 = x.getPixelForValue(band.from);
        if (x0 >= area.left && x0 <= area.right) {
          ctx.fillStyle = 'rgba(220,38,38,0.75)';
          ctx.fillRect(x0 - 1, area.top, 2, area.bottom - area.top);
        }
      });
      ctx.restore();
      chart.$bands = drawn;
      chart.$bandSpan = span;
    },
    afterDatasetsDraw: function (chart) {  // level labels above the series, on a light chip
      var area = chart.chartArea, ctx = chart.ctx, span = chart.$bandSpan;
      if (!BANDS || !span || !BANDS.levels.length) { return; }
      ctx.save();
      ctx.font = '600 10px ' + Chart.defaults.font.family;
      ctx.textBaseline = 'top';
      BANDS.levels.forEach(function (band) {
        var px = span(band);
        if (!px) { return; }
        var room = px[1] - px[0] - 6;
        var text = ctx.measureText(band.label).width <= room ? band.label :
          (ctx.measureText(band.short).width <= room ? band.short : null);
        if (!text) { return; }
        var w = ctx.measureText(text).width;
        ctx.fillStyle = 'rgba(255,255,255,0.85)';
        ctx.fillRect(px[0] + 1, area.top + 1, w + 6, 14);
        ctx.fillStyle = '#334155';
        ctx.fillText(text, px[0] + 4, area.top + 3);
      });
      ctx.restore();
    }
  };

  // The seconds a finding covers, outlined on the chart that shows it (chart.$marks: for the tests).
  var MARKS = (D.ts && D.ts.marks) || [];
  var MARK_COLORS = {critical: '220,38,38', warn: '217,119,6', info: '37,99,235'};
  var marksPlugin = {
    id: 'ssePerfFindings',
    afterDatasetsDraw: function (chart) {
      var x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx, drawn = [];
      MARKS.forEach(function (mark) {
        if (mark.chart !== chart.canvas.id || !x || !area) { return; }
        var x0 = Math.max(area.left, x.getPixelForValue(mark.from));
        var x1 = Math.min(area.right, x.getPixelForValue(mark.to === null || mark.to === undefined ? xMax : mark.to));
        if (x1 <= x0) { return; }
        var rgb = MARK_COLORS[mark.severity] || MARK_COLORS.info;
        ctx.save();
        ctx.fillStyle = 'rgba(' + rgb + ',0.08)';
        ctx.fillRect(x0, area.top, x1 - x0, area.bottom - area.top);
        ctx.strokeStyle = 'rgba(' + rgb + ',0.8)';
        ctx.setLineDash([4, 3]);
        ctx.strokeRect(x0 + 0.5, area.top + 0.5, x1 - x0 - 1, area.bottom - area.top - 1);
        ctx.restore();
        drawn.push({id: mark.id, x0: x0, x1: x1});
      });
      chart.$marks = drawn;
    }
  };

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
      plugins: (BANDS ? [bandsPlugin] : []).concat(MARKS.length ? [marksPlugin] : []),
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

  // Capacity curves of a sweep: one point per level (x = output tokens/s or requests/s,
  // y = a latency percentile), coloured by its SLO verdict; the best level is ringed and
  // starred; SLO limits are dashed lines. The x toggle swaps every curve's x.
  var SWEEP = D.sweep || null;
  var curveCharts = [];
  var curveX = 'tps';
  var MET = '#16a34a', MISSED = '#dc2626', UNKNOWN = '#2563eb';

  function pointColor(p) { return p.met === true ? MET : (p.met === false ? MISSED : UNKNOWN); }

  function curvePoints(spec) {
    var out = [];
    SWEEP.points.forEach(function (p, i) {
      var x = p[curveX], y = spec.ys[i];
      if (x !== null && x !== undefined && y !== null && y !== undefined) { out.push({x: x, y: y, p: p}); }
    });
    return out;
  }

  // Level labels beside the points, SLO limits as dashed lines with their text. Every text box
  // keeps clear of every point marker and of the boxes drawn before it: a limit's text takes the
  // first free corner of its line (right above, left above, right below, left below), then each
  // level label the first free spot around its point. chart.$labelBoxes keeps what was drawn
  // ([x0, y0, x1, y1] in CSS pixels) for the browser tests.
  function overlaps(a, b) { return !(a[0] >= b[2] || a[2] <= b[0] || a[1] >= b[3] || a[3] <= b[1]); }

  function firstFree(spots, w, h, obstacles) {
    var boxes = spots.map(function (s) { return [s[0], s[1], s[0] + w, s[1] + h]; });
    return boxes.filter(function (box) {
      return obstacles.every(function (o) { return !overlaps(box, o); });
    })[0] || boxes[0];
  }

  function curveLabels(limits) {
    return {id: 'ssePerfCurveLabels', afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx, area = chart.chartArea, meta = chart.getDatasetMeta(0);
      var markers = [], texts = [], limitBoxes = [];
      meta.data.forEach(function (el, i) {  // each point's marker, its radius and border included
        var point = chart.data.datasets[0].data[i];
        var r = point && point.p.best ? 9 : 6;
        markers.push([el.x - r, el.y - r, el.x + r, el.y + r]);
      });
      ctx.save();
      ctx.font = '10px ' + Chart.defaults.font.family;
      limits.forEach(function (limit) {
        var y = chart.scales.y.getPixelForValue(limit.value);
        if (y < area.top || y > area.bottom) { return; }
        ctx.strokeStyle = MISSED;
        ctx.lineWidth = 1.2;
        ctx.setLineDash([6, 4]);
        ctx.beginPath(); ctx.moveTo(area.left, y); ctx.lineTo(area.right, y); ctx.stroke();
        ctx.setLineDash([]);
        var w = ctx.measureText(limit.text).width + 6, h = 13;
        var box = firstFree([[area.right - 1 - w, y - 15], [area.left + 1, y - 15],
                             [area.right - 1 - w, y + 2], [area.left + 1, y + 2]],
                            w, h, markers.concat(limitBoxes));
        limitBoxes.push(box);
        ctx.fillStyle = 'rgba(255,255,255,0.85)';
        ctx.fillRect(box[0], box[1], w, h);
        ctx.fillStyle = MISSED;
        ctx.textAlign = 'left';
        ctx.textBaseline = 'bottom';
        ctx.fillText(limit.text, box[0] + 3, box[3] - 1);
      });
      ctx.textAlign = 'left';
      ctx.textBaseline = 'top';
      meta.data.forEach(function (el, i) {
        var point = chart.data.datasets[0].data[i];
        if (!point) { return; }
        ctx.font = (point.p.best ? '700 ' : '600 ') + '11px ' + Chart.defaults.font.family;
        ctx.fillStyle = point.p.best ? MET : '#334155';
        var text = point.p.short + (point.p.best ? ' \u2605 ' + SWEEP.i18n.best : '');
        var w = ctx.measureText(text).width, h = 12, gap = point.p.best ? 10 : 8;
        var lx = el.x + gap + w > area.right ? el.x - gap - w : el.x + gap;
        var others = markers.filter(function (m, j) { return j !== i; });
        var box = firstFree([[lx, el.y - 6 - h], [lx, el.y + 6], [el.x - w / 2, el.y - gap - 2 - h],
                             [el.x - w / 2, el.y + gap + 2]], w, h, others.concat(limitBoxes, texts));
        texts.push(box);
        ctx.fillText(text, box[0], box[1]);
      });
      ctx.restore();
      chart.$labelBoxes = {markers: markers, limits: limitBoxes, levels: texts};
    }};
  }

  function buildCurve(spec) {
    var canvas = document.getElementById(spec.id);
    if (!canvas) { return; }
    var data = curvePoints(spec);
    var limitMax = Math.max.apply(null, spec.limits.map(function (l) { return l.value; }).concat([0]));
    var chart = new Chart(canvas, {
      type: 'scatter',
      data: {datasets: [{
        label: spec.y_title,
        data: data,
        showLine: true,
        borderColor: 'rgba(71,85,105,0.55)',
        borderWidth: 1.5,
        pointBackgroundColor: function (c) { var d = c.raw; return d && d.p.best ? '#fff' : (d ? pointColor(d.p) : UNKNOWN); },
        pointBorderColor: function (c) { var d = c.raw; return d ? pointColor(d.p) : UNKNOWN; },
        pointBorderWidth: function (c) { return c.raw && c.raw.p.best ? 3.5 : 1; },
        pointRadius: function (c) { return c.raw && c.raw.p.best ? 7 : 5; },
        pointHoverRadius: 8
      }]},
      plugins: [curveLabels(spec.limits)],
      options: {
        parsing: false,
        layout: {padding: {top: 16, right: 8}},
        scales: {
          x: {type: 'linear', beginAtZero: true, grace: '8%',
              title: {display: true, text: SWEEP.x_titles[curveX], padding: 0},
              ticks: {maxTicksLimit: 7, callback: function (v) { return fmt(v); }}},
          y: {beginAtZero: true, grace: '10%', suggestedMax: limitMax ? limitMax * 1.1 : undefined,
              ticks: {maxTicksLimit: 6, callback: function (v) { return fmt(v); }},
              afterFit: function (scale) { scale.width = 58; }}
        },
        plugins: {
          legend: {display: false},
          zoom: false,
          tooltip: {callbacks: {
            title: function (items) { return items.length ? items[0].raw.p.label : ''; },
            label: function (item) {
              var p = item.raw.p;
              var verdict = p.met === true ? SWEEP.i18n.met : (p.met === false ? SWEEP.i18n.missed : '');
              return [SWEEP.x_titles[curveX] + ': ' + fmt(item.parsed.x),
                      spec.y_title + ': ' + fmt(item.parsed.y, 'ms')].concat(verdict ? [verdict] : []);
            }
          }}
        }
      }
    });
    chart.$spec = spec;
    curveCharts.push(chart);
  }

  function setCurveX(key) {
    curveX = key;
    curveCharts.forEach(function (chart) {
      chart.data.datasets[0].data = curvePoints(chart.$spec);
      chart.options.scales.x.title.text = SWEEP.x_titles[key];
      chart.update('none');
    });
    Array.prototype.forEach.call(document.querySelectorAll('#curve-x button'), function (b) {
      b.setAttribute('aria-pressed', b.getAttribute('data-x') === key ? 'true' : 'false');
    });
  }

  // Throughput by concurrency (outside a sweep): one point per number of requests in flight,
  // output tokens/s on the left axis and requests finished per second on the right.
  var CONC = D.concurrency || null;
  var concChart = null;
  function buildConcurrency() {
    var canvas = document.getElementById('conc-chart');
    if (!canvas || !CONC) { return; }
    var L = CONC.i18n;
    function series(key, label, color, axis) {
      return {label: label, yAxisID: axis, showLine: true, borderColor: color, backgroundColor: color,
              borderWidth: 1.5, pointRadius: 4, pointHoverRadius: 6, tension: 0,
              data: CONC.points.map(function (p) { return {x: p.c, y: p[key], p: p}; })};
    }
    concChart = new Chart(canvas, {
      type: 'scatter',
      data: {datasets: [series('tps', L.tps, '#0d9488', 'y'), series('rps', L.rps, '#7c3aed', 'y1')]},
      options: {
        parsing: false,
        scales: {
          x: {type: 'linear', beginAtZero: true, title: {display: true, text: L.x, padding: 0},
              ticks: {maxTicksLimit: 8, precision: 0}},
          y: {beginAtZero: true, ticks: {maxTicksLimit: 6, color: '#0d9488', callback: function (v) { return fmt(v); }},
              title: {display: true, text: L.tps, padding: 0}},
          y1: {position: 'right', beginAtZero: true, grid: {drawOnChartArea: false},
               ticks: {maxTicksLimit: 6, color: '#7c3aed', callback: function (v) { return fmt(v); }},
               title: {display: true, text: L.rps, padding: 0}}
        },
        plugins: {
          legend: {display: true, position: 'top', align: 'end', labels: {boxWidth: 10, boxHeight: 10, padding: 8}},
          zoom: false,
          tooltip: {callbacks: {
            title: function (items) {
              if (!items.length) { return ''; }
              var p = items[0].raw.p;
              return L.x + ': ' + nf0.format(p.c) + ' (' + nf0.format(p.seconds) + ' ' + L.seconds + ')';
            },
            label: function (item) { return item.dataset.label + ': ' + fmt(item.parsed.y); }
          }}
        }
      }
    });
  }

  ((D.ts && D.ts.charts) || []).forEach(buildTimeChart);
  buildConcurrency();
  (D.hist || []).forEach(buildHistogram);
  if (SWEEP) {
    SWEEP.charts.forEach(buildCurve);
    Array.prototype.forEach.call(document.querySelectorAll('#curve-x button'), function (b) {
      b.addEventListener('click', function () { setCurveX(b.getAttribute('data-x')); });
    });
  }
  if (resetButton) { resetButton.addEventListener('click', resetAll); }
  showRange(xMin, xMax);

  window.addEventListener('beforeprint', function () {
    Object.values(Chart.instances).forEach(function (c) { c.resize(); });
  });
  window.ssePerfReport = {timeCharts: tsCharts, reset: resetAll, range: [xMin, xMax],
                          bands: BANDS, curveCharts: curveCharts, setCurveX: setCurveX,
                          concurrencyChart: concChart};
})();
