// Deposit pages, progressive enhancement only: every page works without this file (the
// status page then refreshes itself through a <noscript> meta refresh, forms post normally).
// - the live status box polls its fragment every few seconds, paused while the tab is
//   hidden, and stops when the deposit reaches a final state;
// - the page's heading follows the status ("Check your phone" → "Your deposit"); the bank
//   page, whose instructions give way to a summary, reloads instead;
// - when a poll finds the deposit several stages on (paid and minted between two polls),
//   the stages light up one after another, so "Payment received" and "Minting" are seen;
// - "I have already paid — check again" posts in the background and shows the answer;
// - the amount field gets thousands separators as you type;
// - the phone field shows for mobile money, the bank field for bank transfers;
// - the receipt's Print button.
// No external code is loaded (no CDN); a tiny poller instead of a library keeps it light on
// slow connections.
(function () {
  "use strict";

  var FETCH_TIMEOUT_MS = 15000;
  var MAX_BACKOFF_S = 60;
  var STAGE_REVEAL_MS = 900;

  function fetchText(url, options) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, FETCH_TIMEOUT_MS) : null;
    options = options || {};
    options.credentials = "same-origin";
    options.headers = { "X-Requested-With": "fetch" };
    if (controller) { options.signal = controller.signal; }
    return fetch(url, options).then(function (response) {
      if (timer) { clearTimeout(timer); }
      if (response.redirected) {  // logged out meanwhile: let the page itself go to log in
        window.location.reload();
        throw new Error("redirected");
      }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.text();
    }, function (error) {
      if (timer) { clearTimeout(timer); }
      throw error;
    });
  }

  function followHeading(box) {
    var root = box.querySelector(".deposit-status");
    var heading = document.querySelector("h1[data-live-heading]");
    var text = root && root.getAttribute("data-heading");
    if (!heading || !text || heading.textContent === text) { return; }
    if (box.hasAttribute("data-reload-on-new-heading")) {
      window.location.reload();
      return;
    }
    document.title = document.title.replace(heading.textContent, text);
    heading.textContent = text;
  }

  // Steps after `before` are shown as not reached yet, then reached one by one.
  function revealSteps(box, before, pending) {
    var reduce = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    var items = box.querySelectorAll(".steps li[data-step]");
    var later = [];
    for (var i = 0; i < items.length; i++) {
      var step = parseInt(items[i].getAttribute("data-step"), 10);
      if (step > before && items[i].className) { later.push(items[i]); }
    }
    if (reduce || before < 1 || later.length < 2) { return; }
    var finals = later.map(function (item) { return item.className; });
    later.forEach(function (item, index) {
      item.className = index === 0 ? "current" : "";
    });
    later.forEach(function (item, index) {
      pending.push(setTimeout(function () {
        item.className = finals[index];
        if (index + 1 < later.length) { later[index + 1].className = "current"; }
      }, STAGE_REVEAL_MS * (index + 1)));
    });
  }

  function livePoller(box) {
    var url = box.getAttribute("data-poll-url");
    var timer = null;
    var due = false;
    var failures = 0;
    var reveals = [];

    function state() {
      var root = box.querySelector(".deposit-status");
      return {
        final: !root || root.getAttribute("data-final") === "1",
        seconds: root ? parseInt(root.getAttribute("data-poll-seconds"), 10) || 0 : 0,
        step: root ? parseInt(root.getAttribute("data-step"), 10) || 0 : 0
      };
    }

    function schedule() {
      var current = state();
      if (current.final || !current.seconds) { return; }
      var wait = Math.min(current.seconds * Math.pow(2, failures), MAX_BACKOFF_S);
      timer = setTimeout(tick, wait * 1000);
    }

    function show(html) {
      var before = state().step;
      while (reveals.length) { clearTimeout(reveals.pop()); }
      box.innerHTML = html;
      failures = 0;
      followHeading(box);
      revealSteps(box, before, reveals);
    }

    function tick() {
      timer = null;
      if (document.hidden) { due = true; return; }  // resumed by visibilitychange
      fetchText(url).then(show, function () { failures += 1; }).then(schedule);
    }

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && due) { due = false; tick(); }
    });

    box.addEventListener("submit", function (event) {
      var form = event.target;
      if (!form.hasAttribute("data-check-again")) { return; }
      event.preventDefault();
      var button = form.querySelector("button");
      if (button) { button.disabled = true; }
      if (timer) { clearTimeout(timer); timer = null; }
      fetchText(form.action, { method: "POST", body: new FormData(form) })
        .then(show, function () { form.submit(); })
        .then(schedule);
    });

    schedule();
  }

  function groupDigits(digits) {
    return digits.replace(/^0+(?=\d)/, "").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function amountField(input) {
    input.addEventListener("input", function () {
      var caret = input.selectionStart || 0;
      var digitsBefore = input.value.slice(0, caret).replace(/\D/g, "").length;
      var digits = input.value.replace(/\D/g, "");
      if (digits !== input.value.replace(/[,\s]/g, "")) { return; }  // let the server explain
      input.value = groupDigits(digits);
      var position = 0;
      for (var seen = 0; position < input.value.length && seen < digitsBefore; position++) {
        if (/\d/.test(input.value.charAt(position))) { seen++; }
      }
      input.setSelectionRange(position, position);
    });
  }

  function providerToggle(form) {
    var radios = form.querySelectorAll("input[name=payment_provider]");
    var blocks = form.querySelectorAll("[data-when]");
    function update() {
      var chosen = form.querySelector("input[name=payment_provider]:checked");
      for (var i = 0; i < blocks.length; i++) {
        blocks[i].hidden = !!chosen && blocks[i].getAttribute("data-when") !== chosen.value;
      }
    }
    for (var i = 0; i < radios.length; i++) { radios[i].addEventListener("change", update); }
    update();
  }

  var box = document.getElementById("deposit-status");
  if (box && window.fetch) { livePoller(box); }
  var amount = document.querySelector("input[data-amount]");
  if (amount) { amountField(amount); }
  var form = document.getElementById("deposit-form");
  if (form) { providerToggle(form); }
  var print = document.querySelector("[data-print]");
  if (print && window.print) {
    print.hidden = false;
    print.addEventListener("click", function () { window.print(); });
  }
})();
