// A second tap while the first submit is on its way creates nobody twice (the server
// dedupes), but a disabled button tells the customer that something is happening.
document.addEventListener('DOMContentLoaded', function () {
  var form = document.querySelector('[data-testid=join-form]');
  if (!form) return;
  form.addEventListener('submit', function () {
    var button = form.querySelector('button[type=submit]');
    // After the event: a button disabled before submit would drop out of the form data.
    // The words come from the page, in its language (join.html's data-busy-text).
    var busy = form.getAttribute('data-busy-text') || button.textContent;
    setTimeout(function () { button.disabled = true; button.textContent = busy; }, 0);
  });
});
