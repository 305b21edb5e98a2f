// Loaded as a classic, blocking script in <head>: it sets the chosen theme before the first
// paint, so a dark-mode user never sees a white flash. (No inline script: CSP-friendly.)
(function () {
  var t = localStorage.getItem("herd.theme");
  if (t === "dark" || t === "light") document.documentElement.dataset.theme = t;
})();
