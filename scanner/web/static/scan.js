// A tiny enhancement: "/" focuses the search box (as in Miniflux and GitHub); pages work without it.
document.addEventListener("keydown", function (event) {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  var target = event.target;
  if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
  var box = document.getElementById("q") || document.getElementById("quick-q");
  if (box) { event.preventDefault(); box.focus(); box.select(); }
});
