// The deals kanban's drag and drop (progressive enhancement): dropping a deal card on
// another stage's column posts the card's own move form (CSRF token, the deal's version
// as the expected one, its idempotency key) with that stage, then reloads the board; a
// refused move puts the card back and shows the server's message. Without JavaScript
// each card's form does the same.
(function () {
  "use strict";
  var board = document.getElementById("kanban");
  var message = document.getElementById("kanban-error");
  if (!board || !window.fetch || !window.DOMParser) { return; }
  var dragged = null;

  function cardOf(node) { return node && node.closest ? node.closest(".deal-card") : null; }
  function columnOf(node) { return node && node.closest ? node.closest(".column") : null; }
  function clearTargets() {
    board.querySelectorAll(".drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
  }
  function show(text) {
    message.textContent = text;
    message.hidden = false;
  }
  function refusal(html, fallback) {
    var page = new DOMParser().parseFromString(html, "text/html");
    var found = page.querySelector(".form-error") || page.querySelector("main [role=alert]");
    var text = found ? found.textContent.replace(/\s+/g, " ").trim() : "";
    return text || fallback;
  }

  board.addEventListener("dragstart", function (event) {
    var card = cardOf(event.target);
    if (!card || !card.querySelector("form.move")) { return; }
    dragged = card;
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-deal"));
  });
  board.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    dragged = null;
    clearTargets();
  });
  board.addEventListener("dragover", function (event) {
    var column = columnOf(event.target);
    if (!dragged || !column || column.getAttribute("data-stage") === dragged.getAttribute("data-stage")) { return; }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    clearTargets();
    column.classList.add("drop-target");
  });
  board.addEventListener("drop", function (event) {
    var column = columnOf(event.target);
    var card = dragged;
    clearTargets();
    if (!card || !column) { return; }
    var stage = column.getAttribute("data-stage");
    if (stage === card.getAttribute("data-stage")) { return; }
    event.preventDefault();
    var form = card.querySelector("form.move");
    var home = card.parentNode;
    var next = card.nextSibling;
    var fields = new URLSearchParams(new FormData(form));
    fields.set("stage", stage);
    message.hidden = true;
    column.appendChild(card);
    card.classList.add("moving");
    fetch(form.action, {
      method: "POST",
      body: fields,
      credentials: "same-origin",
      headers: { "Accept": "text/html" }
    }).then(function (answer) {
      if (answer.ok) {
        window.location.reload();
        return null;
      }
      return answer.text().then(function (html) {
        throw new Error(refusal(html, board.getAttribute("data-failed")));
      });
    }).catch(function (error) {
      home.insertBefore(card, next);
      card.classList.remove("moving");
      var refused = error && !(error instanceof TypeError) && error.message;
      show(refused || board.getAttribute("data-failed"));
    });
  });
})();
