// The lineage graph: layers left to right in the order data flows, drawn as SVG.
// Data comes from the page (<script type="application/json" id="graph-data">); nothing is fetched.
// A click on an object focuses the graph on it (what it reads from and what reads from it);
// on the focused object, a click opens its page. Hovering traces an object's paths.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var W = 168, H = 34, GAP_X = 52, GAP_Y = 14, PAD = 16;
  var host = document.getElementById("graph");
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var base = host.getAttribute("data-base") || "";
  if (!data.nodes.length) {
    host.textContent = "Nothing registered yet: run featurestore apply.";
    return;
  }

  var byId = {}, ups = {}, downs = {};
  data.nodes.forEach(function (n) { byId[n.id] = n; ups[n.id] = []; downs[n.id] = []; });
  data.edges.forEach(function (e) { downs[e.from].push(e.to); ups[e.to].push(e.from); });

  // Columns: the non-empty layers. Rows: by name first, then each column sorted by the mean
  // row of what it reads from (one sweep of the barycenter heuristic), to cut crossings.
  var layers = [];
  data.nodes.forEach(function (n) { (layers[n.layer] = layers[n.layer] || []).push(n); });
  layers = layers.filter(Boolean);
  layers.forEach(function (column, x) { column.forEach(function (n, y) { n.col = x; n.row = y; }); });
  layers.forEach(function (column) {
    column.forEach(function (n) {
      var rows = ups[n.id].map(function (id) { return byId[id].row; });
      n.weight = rows.length ? rows.reduce(function (a, b) { return a + b; }, 0) / rows.length : n.row;
    });
    column.sort(function (a, b) { return a.weight - b.weight || (a.name < b.name ? -1 : 1); });
    column.forEach(function (n, y) { n.row = y; });
  });
  var tallest = Math.max.apply(null, layers.map(function (c) { return c.length; }));
  var width = PAD * 2 + layers.length * W + (layers.length - 1) * GAP_X;
  var height = PAD * 2 + tallest * H + (tallest - 1) * GAP_Y + 20;
  layers.forEach(function (column) {
    var offset = (tallest - column.length) * (H + GAP_Y) / 2;
    column.forEach(function (n) {
      n.x = PAD + n.col * (W + GAP_X);
      n.y = PAD + 20 + offset + n.row * (H + GAP_Y);
    });
  });

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  // Scaled down to the page's width when wider, never up.
  var svg = el("svg", {viewBox: "0 0 " + width + " " + height, "class": "lineage", style: "max-width:" + width + "px",
                       role: "img", "aria-label": "lineage graph"}, host);
  layers.forEach(function (column) {
    var label = el("text", {x: column[0].x, y: PAD + 6, "class": "layer"}, svg);
    label.textContent = column[0].label;
  });
  // An edge that skips layers goes through the gaps between the objects of each layer it
  // crosses, so it never seems to pass through (or come out of) an object it does not touch.
  function gapAt(column, wanted) {
    var y = wanted;
    column.forEach(function (n) {
      if (y > n.y - GAP_Y / 2 && y < n.y + H + GAP_Y / 2) {
        y = (y - n.y < H / 2) ? n.y - GAP_Y / 2 : n.y + H + GAP_Y / 2;
      }
    });
    return y;
  }
  function curve(x1, y1, x2, y2) {
    var mid = (x1 + x2) / 2;
    return " C" + mid + "," + y1 + " " + mid + "," + y2 + " " + x2 + "," + y2;
  }
  var edges = data.edges.map(function (e) {
    var a = byId[e.from], b = byId[e.to];
    var x = a.x + W, y = a.y + H / 2, endY = b.y + H / 2, d = "M" + x + "," + y;
    for (var col = a.col + 1; col < b.col; col++) {
      var left = PAD + col * (W + GAP_X);
      var wanted = y + (endY - y) * (left - x) / (b.x - x);
      var through = gapAt(layers[col], wanted);
      d += curve(x, y, left, through) + " H" + (left + W);
      x = left + W;
      y = through;
    }
    d += curve(x, y, b.x, endY);
    var path = el("path", {d: d, "class": "edge", "data-from": e.from, "data-to": e.to}, svg);
    return {from: e.from, to: e.to, path: path};
  });
  var groups = {};
  data.nodes.forEach(function (n) {
    var focused = n.id === data.focus;
    var link = el("a", {href: base + (focused ? n.url : n.focus_url), "data-id": n.id,
                        "class": "node kind-" + n.kind + (focused ? " focus" : "")}, svg);
    var title = el("title", {}, link);
    title.textContent = n.label + " " + n.name + (focused ? " (open its page)" : " (show its lineage)");
    el("rect", {x: n.x, y: n.y, width: W, height: H, rx: 6}, link);
    var text = el("text", {x: n.x + 10, y: n.y + 23}, link);
    // Long names are cut to the box as rendered (fonts differ); the title keeps the whole name.
    text.textContent = n.name;
    for (var keep = n.name.length - 1; keep > 0 && text.getComputedTextLength() > W - 18; keep--) {
      text.textContent = n.name.slice(0, keep) + "…";
    }
    groups[n.id] = link;
  });

  function reach(start, next) {
    var seen = {}, todo = [start];
    while (todo.length) {
      var id = todo.pop();
      if (seen[id]) continue;
      seen[id] = true;
      todo.push.apply(todo, next[id]);
    }
    return seen;
  }

  function trace(id) {
    var up = reach(id, ups), down = reach(id, downs);
    svg.classList.toggle("tracing", Boolean(id));
    Object.keys(groups).forEach(function (key) {
      groups[key].classList.toggle("lit", Boolean(id) && (up[key] || down[key]));
    });
    edges.forEach(function (e) {
      var lit = id && ((up[e.from] && up[e.to]) || (down[e.from] && down[e.to]));
      e.path.classList.toggle("lit", Boolean(lit));
    });
  }

  Object.keys(groups).forEach(function (id) {
    groups[id].addEventListener("mouseenter", function () { trace(id); });
    groups[id].addEventListener("mouseleave", function () { trace(null); });
    groups[id].addEventListener("focus", function () { trace(id); });
    groups[id].addEventListener("blur", function () { trace(null); });
  });
  if (data.focus && groups[data.focus]) {
    trace(data.focus);
    groups[data.focus].scrollIntoView({block: "nearest", inline: "center"});
  }
}());
