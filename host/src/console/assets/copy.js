// Copy buttons: the only script of the console; the pages work without it.
document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
  button.classList.add("ready");
  button.addEventListener("click", function () {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () {});
    } else {
      field.select();
      try { document.execCommand("copy"); done(); } catch (e) {}
    }
  });
});
