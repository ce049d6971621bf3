// Signs the wallet ownership message with a browser wallet (EIP-1193 `window.ethereum`,
// personal_sign), fills the signature in and submits. Without a browser wallet the page
// works as is: the person pastes a signature made elsewhere. No external code is loaded.
(function () {
  "use strict";
  var box = document.getElementById("browser-wallet");
  var form = document.getElementById("wallet-verify-form");
  var messageNode = document.getElementById("wallet-message");
  var addressNode = document.getElementById("wallet-address");
  if (!box || !form || !messageNode || !addressNode || !window.ethereum) {
    return;
  }
  var message = JSON.parse(messageNode.textContent);
  var address = JSON.parse(addressNode.textContent);
  var button = document.getElementById("sign-with-wallet");
  var status = document.getElementById("browser-wallet-status");

  function toHex(text) {
    var bytes = new TextEncoder().encode(text);
    var hex = "0x";
    for (var i = 0; i < bytes.length; i++) {
      hex += bytes[i].toString(16).padStart(2, "0");
    }
    return hex;
  }

  box.hidden = false;
  button.addEventListener("click", function () {
    status.textContent = box.dataset.connecting;
    button.disabled = true;
    window.ethereum
      .request({ method: "eth_requestAccounts" })
      .then(function (accounts) {
        var match = (accounts || []).filter(function (a) {
          return a.toLowerCase() === address.toLowerCase();
        })[0];
        if (!match) {
          throw new Error("wrong-account");
        }
        return window.ethereum.request({
          method: "personal_sign",
          params: [toHex(message), match],
        });
      })
      .then(function (signature) {
        form.elements.signature.value = signature;
        form.submit();
      })
      .catch(function (error) {
        status.textContent =
          error && error.message === "wrong-account" ? box.dataset.wrongAccount : box.dataset.refused;
        button.disabled = false;
      });
  });
})();
