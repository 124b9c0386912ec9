// The lineage graph: layers left to right in the order data flows, drawn as SVG.
// Data comes from the page (<script type="application/json" id="graph-data">); nothing is fetched.
// A click on an object focuses the graph on it (what it reads from and what reads from it);
// on the focused object, a click opens its page. Hovering traces an object's paths.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var W = 200, H = 36, GAP_X = 70, GAP_Y = 14, PAD = 16;
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

  var svg = el("svg", {viewBox: "0 0 " + width + " " + height, width: width, height: height, "class": "lineage",
                       role: "img", "aria-label": "lineage graph"}, host);
  layers.forEach(function (column) {
    var label = el("text", {x: column[0].x, y: PAD + 6, "class": "layer"}, svg);
    label.textContent = column[0].label;
  });
  var edges = data.edges.map(function (e) {
    var a = byId[e.from], b = byId[e.to];
    var x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mid = (x1 + x2) / 2;
    var path = el("path", {d: "M" + x1 + "," + y1 + " C" + mid + "," + y1 + " " + mid + "," + y2 + " " + x2 + "," + y2,
                           "class": "edge", "data-from": e.from, "data-to": e.to}, svg);
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
    text.textContent = n.name.length > 26 ? n.name.slice(0, 25) + "…" : n.name;
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
