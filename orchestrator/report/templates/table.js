// mateval report: sorting (click a header of a table.sortable) and filtering (table.filterable or
// [data-filter]) of the report's tables. Inlined into the page by orchestrator/report/render.py and
// allowed by its SHA-256 hash in the Content-Security-Policy. It holds no data: it reads the DOM only
// through textContent and attributes and builds elements with DOM calls.
(() => {
  "use strict";
  const key = (cell) => {
    const raw = cell ? cell.getAttribute("data-sort") : null;
    return {
      num: raw === null || raw.trim() === "" ? NaN : Number(raw),
      text: cell ? cell.textContent.trim().toLowerCase() : "",
      missing: !cell || cell.classList.contains("missing"),
    };
  };
  // numbers before text, values not recorded last (in both directions)
  const compare = (a, b, dir) => {
    if (a.missing !== b.missing) return a.missing ? 1 : -1;
    const an = !Number.isNaN(a.num), bn = !Number.isNaN(b.num);
    if (an && bn) return (a.num - b.num) * dir;
    if (an !== bn) return an ? -1 : 1;
    return a.text.localeCompare(b.text, undefined, { numeric: true }) * dir;
  };
  const sortable = (table) => {
    const body = table.tBodies[0];
    const head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!body || !head) return;
    const original = new Map(Array.from(body.rows, (row, i) => [row, i]));
    const headers = Array.from(head.cells);
    const arrows = headers.map((th) => {
      const arrow = document.createElement("span");
      arrow.className = "sort-arrow";
      arrow.setAttribute("aria-hidden", "true");
      th.appendChild(arrow);
      return arrow;
    });
    headers.forEach((th, col) => {
      const sort = () => {
        const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        headers.forEach((h, i) => { h.removeAttribute("aria-sort"); arrows[i].textContent = ""; });
        th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
        arrows[col].textContent = dir > 0 ? "\u25b2" : "\u25bc";
        Array.from(body.rows, (row) => ({ row, k: key(row.cells[col]) }))
          .sort((a, b) => compare(a.k, b.k, dir) || original.get(a.row) - original.get(b.row))
          .forEach((item) => body.appendChild(item.row));
      };
      th.classList.add("sort-header");
      th.tabIndex = 0;
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  };
  const filterable = (table) => {
    const labelOnly = table.getAttribute("data-filter") === "label";
    const input = document.createElement("input");
    input.type = "search";
    input.className = "table-filter";
    input.placeholder = labelOnly ? "Filter rows by name\u2026" : "Filter rows\u2026";
    input.setAttribute("aria-label", "Filter the rows of the table below");
    if (table.id) input.id = table.id + "-filter";
    const count = document.createElement("span");
    count.className = "filter-count";
    const bar = document.createElement("div");
    bar.className = "filter-bar";
    bar.append(input, count);
    const wrap = table.parentElement;
    (wrap && wrap.classList.contains("table-wrap") ? wrap : table).before(bar);
    input.addEventListener("input", () => {
      const q = input.value.trim().toLowerCase();
      let shown = 0, total = 0, group = null, groupText = "", hits = 0;
      const close = () => { if (group) group.hidden = q !== "" && hits === 0; };
      for (const body of table.tBodies) {
        for (const row of body.rows) {
          if (row.classList.contains("group")) {
            close();
            group = row; groupText = row.textContent.toLowerCase(); hits = 0;
            continue;
          }
          const cell = labelOnly ? row.cells[0] : row;
          const text = cell ? cell.textContent.toLowerCase() : "";
          const hit = q === "" || text.includes(q) || (group !== null && groupText.includes(q));
          row.hidden = !hit;
          total += 1;
          if (hit) { shown += 1; hits += 1; }
        }
      }
      close();
      count.textContent = q ? shown + " of " + total + " rows" : "";
    });
  };
  document.querySelectorAll("table.sortable").forEach(sortable);
  document.querySelectorAll("table.filterable, table[data-filter]").forEach(filterable);
})();
