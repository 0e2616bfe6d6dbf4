// Search the course: window.COURSE_SEARCH (assets/search-index.js) holds one entry per section
// of every twin page: {u: address, h: heading, c: concept, s: set, x: text}.
(function () {
  "use strict";
  var entries = window.COURSE_SEARCH || [];
  var input = document.getElementById("search-input");
  var status = document.getElementById("search-status");
  var list = document.getElementById("search-results");

  function words(query) {
    return query.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 0; });
  }

  function score(entry, terms) {
    var heading = entry.h.toLowerCase(), text = entry.x.toLowerCase(), total = 0;
    for (var i = 0; i < terms.length; i++) {
      var inHeading = heading.indexOf(terms[i]) >= 0, inText = text.indexOf(terms[i]) >= 0;
      if (!inHeading && !inText) return 0;
      total += (inHeading ? 10 : 0) + (inText ? 1 : 0);
    }
    return total;
  }

  function snippet(text, term) {
    var at = text.toLowerCase().indexOf(term);
    if (at < 0) return text.slice(0, 160);
    var start = Math.max(0, at - 70);
    return (start > 0 ? "…" : "") + text.slice(start, at + 110) + "…";
  }

  function show(query) {
    var terms = words(query);
    list.textContent = "";
    if (!terms.length) { status.textContent = entries.length + " sections to search."; return; }
    var found = entries.map(function (e) { return [score(e, terms), e]; })
      .filter(function (p) { return p[0] > 0; })
      .sort(function (a, b) { return b[0] - a[0]; });
    status.textContent = found.length + " section" + (found.length === 1 ? "" : "s") + " found.";
    found.slice(0, 100).forEach(function (pair) {
      var e = pair[1], item = document.createElement("li"), link = document.createElement("a");
      link.href = e.u;
      link.textContent = e.h;
      var where = document.createElement("span");
      where.className = "where";
      where.textContent = " " + e.c + " · " + e.s;
      var text = document.createElement("p");
      text.textContent = snippet(e.x, terms[0]);
      item.appendChild(link);
      item.appendChild(where);
      item.appendChild(text);
      list.appendChild(item);
    });
  }

  var query = new URLSearchParams(location.search).get("q") || "";
  input.value = query;
  show(query);
  input.addEventListener("input", function () { show(input.value); });
}());
