// The till page: look up a scanned code, then record a purchase (part paid with points),
// add a stamp, redeem a reward or coupon, refund a purchase, and undo the last scan. Everything goes through /till/api/* with the
// session cookie and the CSRF token; the server's answer is the API's ScanOut.
(function () {
  'use strict';
  var root = document.getElementById('till');
  if (!root) return;
  var $ = function (id) { return document.getElementById(id); };
  var csrf = root.dataset.csrf;
  var scanUrl = root.dataset.scanUrl;
  var undoUrl = root.dataset.undoUrl;
  var payUrl = root.dataset.payUrl;
  var cardEmailUrl = root.dataset.cardEmailUrl;  // empty: card emails are off (no SMTP)
  var currency = root.dataset.currency;
  var UNDO_WINDOW_MS = 5 * 60 * 1000;

  var current = null;      // the last ScanOut shown
  var currentCode = '';    // the code it was looked up with
  var pendingReceipt = null;
  var pendingPayment = null;  // the receipt id of a membership payment not yet confirmed
  var pendingRefund = null;   // {key, id}: the refund id of a refund not yet confirmed
  var pendingCardEmail = null;  // {code, key}: a card email not yet confirmed
  var undoTimer = null;
  var busy = false;

  function newId(prefix) {
    var bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return prefix + Array.prototype.map.call(bytes, function (b) {
      return ('0' + b.toString(16)).slice(-2);
    }).join('');
  }

  function show(el, on) { el.hidden = !on; }

  // The server gives every time in the shop's time zone, with its offset
  // ("2026-06-30T22:00:00-04:00"): its date and clock are the counter's as written,
  // whatever zone the device running the page is set to.
  function localDate(iso) { return iso ? iso.slice(0, 10) : ''; }
  function localTime(iso) { return iso ? iso.slice(11, 16) : ''; }

  function status(text, isError) {
    var el = $('status');
    el.textContent = text;
    el.className = 'till-status' + (isError ? ' error' : '');
    show(el, !!text);
  }

  function post(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (r.status === 401) { window.location = '/till/login?next=/till/'; }
        return { ok: r.ok, status: r.status, data: data };
      });
    });
  }

  // One request at a time: a double tap must not send a second, different request.
  function run(body, describe) {
    if (busy) return Promise.resolve(null);
    busy = true;
    setButtons(true);
    return post(scanUrl, body).then(function (res) {
      if (!res.ok) {
        status(res.data.detail || ('Error ' + res.status), true);
        return null;
      }
      render(res.data);
      if (describe) {
        status(describe(res.data), false);
        if (body.action !== 'lookup') armUndo(res.data, undoLabel(body));
      }
      return res.data;
    }).catch(function () {
      status('No connection. Try again: it will not be counted twice.', true);
      return null;
    }).finally(function () {
      busy = false;
      setButtons(false);
    });
  }

  function setButtons(disabled) {
    Array.prototype.forEach.call(root.querySelectorAll('#result button, #lookup-form button'),
      function (b) { b.disabled = disabled; });
  }

  function balanceText(out) {
    if (out.balance.points !== null && out.balance.points !== undefined) {
      return [String(out.balance.points), 'points'];
    }
    if (out.balance.stamps !== null && out.balance.stamps !== undefined) {
      var goal = out.member && out.member.stamps_goal;
      return [out.balance.stamps + (goal ? ' / ' + goal : ''), 'stamps'];
    }
    return ['', ''];
  }

  function render(out) {
    current = out;
    var isMember = out.kind === 'member' && out.member;
    show($('result'), true);
    if (isMember) {
      var m = out.member;
      $('who-name').textContent = m.name || 'Member';
      var sub = [];
      if (m.tier) sub.push(m.tier + (m.tier_discount_percent ? ' (' + Number(m.tier_discount_percent) + '% off)' : ''));
      if (m.membership_valid_until && !m.membership) sub.push('valid until ' + localDate(m.membership_valid_until));
      $('who-sub').textContent = sub.join(' · ') || 'Member';
      renderMembership(m.membership);
    } else if (out.coupon) {
      renderMembership(null);
      var c = out.coupon;
      $('who-name').textContent = c.title;
      $('who-sub').textContent = (c.usable_now ? c.uses_left + ' use(s) left' : 'Not usable now (' + c.status + ')') +
        (c.valid_until ? ' · until ' + localDate(c.valid_until) : '');
    }
    var b = balanceText(out);
    $('balance-value').textContent = b[0];
    $('balance-label').textContent = b[1];
    var kind = isMember ? out.member.program_kind : '';
    var buys = isMember && kind !== 'membership' && kind !== 'offers';
    show($('purchase-form'), buys);
    show($('points-pay'), isMember && (kind === 'points' || kind === 'tiers'));
    show($('refund-box'), buys);
    show($('card-email-btn'), !!cardEmailUrl && !!isMember);
    fillList('purchases', buys ? out.recent_purchases : [], function (p) {
      var text = localDate(p.at) + ' ' + localTime(p.at) + ' · ' + currency + ' ' + p.amount +
        ' · ' + p.receipt_id;
      return [text, function () { fillRefund(p); }, 'Refund'];
    });
    show($('stamp-btn'), isMember && kind === 'stamps');
    show($('coupon-btn'), !isMember && out.coupon && out.coupon.usable_now);
    fillList('rewards', out.redeemable.rewards, function (r) {
      // A stamp card's reward costs stamps (its goal's) or nothing (one on the way).
      var unit = kind === 'stamps' ? ' stamps' : ' pts';
      return [r.name + (r.cost ? ' (' + r.cost + unit + ')' : ''), function () { redeemReward(r); }];
    });
    fillList('coupons', isMember ? out.redeemable.coupons : [], function (c) {
      return [c.title, function () { redeemMemberCoupon(c); }];
    });
  }

  // A membership card: whether it gives its benefits now, and the payment button. A
  // pending or lapsed card gets no benefits (the server refuses its rewards too).
  function renderMembership(ms) {
    show($('membership-box'), !!ms);
    if (!ms) return;
    var price = ms.paid ? currency + ' ' + Number(ms.price).toFixed(2) : '';
    var until = localDate(ms.valid_until);
    var state = $('membership-state');
    state.className = ms.status === 'active' ? '' : 'inactive';
    state.textContent = {
      pending: 'Membership unpaid: no member benefits until it is paid (' + price + ').',
      lapsed: 'Membership lapsed on ' + until + ': no member benefits until it is renewed.',
      active: 'Membership valid until ' + until + (ms.ends_soon ? ' (ends soon)' : '') + '.'
    }[ms.status];
    $('membership-benefits').textContent = ms.benefits ? 'Benefits: ' + ms.benefits : '';
    var pay = $('pay-btn');
    pay.textContent = ms.paid ? 'Record payment of ' + price : 'Renew membership';
    pay.dataset.amount = ms.paid ? Number(ms.price).toFixed(2) : '';
    // Renewing an active card early is allowed (it extends from its end), but only
    // offered once the card says it ends soon.
    show(pay, ms.status !== 'active' || ms.ends_soon);
  }

  function fillList(id, items, describe) {
    var list = $(id);
    list.textContent = '';
    (items || []).forEach(function (item) {
      var d = describe(item);
      var li = document.createElement('li');
      var span = document.createElement('span');
      span.textContent = d[0];
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'till-secondary';
      button.textContent = d[2] || 'Redeem';
      button.addEventListener('click', d[1]);
      li.appendChild(span);
      li.appendChild(button);
      list.appendChild(li);
    });
    show($(id + '-box'), (items || []).length > 0);
  }

  function delta(out) {
    var parts = [];
    if (out.points_delta) parts.push((out.points_delta > 0 ? '+' : '') + out.points_delta + ' points');
    if (out.stamps_delta) parts.push((out.stamps_delta > 0 ? '+' : '') + out.stamps_delta + ' stamps');
    if (out.rewards_reached && out.rewards_reached.length) parts.push('reached: ' + out.rewards_reached.join(', '));
    return parts.join(', ');
  }

  function lookup(code) {
    code = (code || '').trim();
    if (!code) return;
    currentCode = code;
    pendingReceipt = null;
    pendingPayment = null;
    return run({ code: code, action: 'lookup' }, function () { return ''; }).then(function (out) {
      if (out) {
        status('', false);
        var amount = $('amount');
        if (!$('purchase-form').hidden) amount.focus();
      }
    });
  }

  $('lookup-form').addEventListener('submit', function (e) {
    e.preventDefault();
    lookup($('code').value);
  });

  $('purchase-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var amount = $('amount').value.trim().replace(',', '.');
    if (!/^\d+(\.\d{1,2})?$/.test(amount)) { status('Enter an amount like 12.50', true); return; }
    // Made once per purchase and kept until it succeeds: a double tap or a retry after a
    // lost connection sends the same receipt id, and the server counts it once.
    var points = $('points-pay').hidden ? '' : $('redeem-points').value.trim();
    if (points && !/^\d+$/.test(points)) { status('Enter the points to pay with as a whole number', true); return; }
    var receipt = $('receipt').value.trim() || pendingReceipt || (pendingReceipt = newId('till-'));
    var body = { code: currentCode, action: 'purchase', amount: amount, receipt_id: receipt };
    if (Number(points) > 0) body.redeem_points = Number(points);
    run(body, function (out) {
      var d = delta(out);
      var paid = out.discount && Number(out.discount) > 0
        ? '; points paid ' + currency + ' ' + Number(out.discount).toFixed(2) + ' of it' : '';
      return 'Purchase of ' + amount + ' recorded' + (out.replayed ? ' (already counted)' : '') +
        paid + (d ? ': ' + d : '') + '. Balance ' + balanceText(out).join(' ') + '.';
    }).then(function (out) {
      if (out) {
        pendingReceipt = null;
        $('amount').value = '';
        $('redeem-points').value = '';
        $('receipt').value = '';
        $('code').focus();
      }
    });
  });

  function fillRefund(purchase) {
    $('refund-receipt').value = purchase.receipt_id;
    $('refund-amount').value = purchase.amount;
    $('refund-amount').focus();
  }

  $('refund-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var receipt = $('refund-receipt').value.trim();
    var amount = $('refund-amount').value.trim().replace(',', '.');
    if (!receipt) { status('Enter the receipt number of the purchase to refund', true); return; }
    if (!/^\d+(\.\d{1,2})?$/.test(amount)) { status('Enter an amount like 12.50', true); return; }
    // One refund id per refund, kept until it succeeds: a retry after a lost answer counts
    // once, and a second partial refund of the same receipt is a refund of its own.
    var key = receipt + ' ' + amount;
    if (!pendingRefund || pendingRefund.key !== key) pendingRefund = { key: key, id: newId('rf-') };
    var body = { code: currentCode, action: 'refund', receipt_id: receipt, amount: amount,
                 refund_id: pendingRefund.id };
    run(body, function (out) {
      var d = delta(out);
      return 'Refund of ' + amount + ' on receipt ' + receipt + ' recorded' +
        (out.replayed ? ' (already counted)' : '') + (d ? ': ' + d : '') +
        '. Balance ' + balanceText(out).join(' ') + '.';
    }).then(function (out) {
      if (out) {
        pendingRefund = null;
        $('refund-receipt').value = '';
        $('refund-amount').value = '';
      }
    });
  });

  $('stamp-btn').addEventListener('click', function () {
    run({ code: currentCode, action: 'stamp', receipt_id: newId('stamp-') }, function (out) {
      return 'Stamp added. Now ' + balanceText(out).join(' ') + '.';
    });
  });

  $('pay-btn').addEventListener('click', function () {
    if (busy) return;
    var amount = $('pay-btn').dataset.amount;
    // Kept until the server confirms: a retry after a lost answer renews once.
    var receipt = pendingPayment || (pendingPayment = newId('pay-'));
    var body = { code: currentCode, receipt_id: receipt };
    if (amount) body.amount = amount;
    busy = true;
    setButtons(true);
    post(payUrl, body).then(function (res) {
      if (!res.ok) { status(res.data.detail || ('Error ' + res.status), true); return; }
      pendingPayment = null;
      var until = localDate(res.data.membership.valid_until);
      status((amount ? 'Payment of ' + currency + ' ' + amount + ' recorded' : 'Renewed') +
        (res.data.replayed ? ' (already recorded)' : '') + ': valid until ' + until + '.', false);
      lookupQuietly();
    }).catch(function () {
      status('No connection. Try again: it will not be counted twice.', true);
    }).finally(function () {
      busy = false;
      setButtons(false);
    });
  });

  $('card-email-btn').addEventListener('click', function () {
    if (busy) return;
    // Kept until the server confirms: a retry after a lost answer is the same email.
    if (!pendingCardEmail || pendingCardEmail.code !== currentCode) {
      pendingCardEmail = { code: currentCode, key: newId('mail-') };
    }
    busy = true;
    setButtons(true);
    post(cardEmailUrl, { code: currentCode, request_key: pendingCardEmail.key }).then(function (res) {
      if (!res.ok) { status(res.data.detail || ('Error ' + res.status), true); return; }
      pendingCardEmail = null;
      status($('card-email-btn').dataset.done, false);
    }).catch(function () {
      status('No connection. Try again: it will not be counted twice.', true);
    }).finally(function () {
      busy = false;
      setButtons(false);
    });
  });

  $('coupon-btn').addEventListener('click', function () {
    run({ code: currentCode, action: 'redeem_coupon' }, function (out) {
      return 'Coupon redeemed: ' + (out.coupon ? out.coupon.title : '') + '.';
    });
  });

  function redeemReward(reward) {
    run({ code: currentCode, action: 'redeem_reward', reward_id: reward.id, receipt_id: newId('rw-') },
      function (out) {
        return 'Reward redeemed: ' + reward.name + (out.redemption_code ? ' (code ' + out.redemption_code + ')' : '') +
          '. Balance ' + balanceText(out).join(' ') + '.';
      });
  }

  function redeemMemberCoupon(coupon) {
    run({ code: currentCode, action: 'redeem_coupon', coupon_id: coupon.id }, function () {
      return 'Coupon redeemed: ' + coupon.title + '.';
    }).then(function (out) { if (out) lookupQuietly(); });
  }

  // Redeeming a member's coupon answers with the coupon; show the member's card again.
  function lookupQuietly() {
    post(scanUrl, { code: currentCode, action: 'lookup' }).then(function (res) {
      if (res.ok) render(res.data);
    });
  }

  function undoLabel(body) {
    var what = { purchase: 'purchase of ' + body.amount, stamp: 'stamp', refund: 'refund of ' + body.amount,
                 redeem_reward: 'reward', redeem_coupon: 'coupon' }[body.action] || body.action;
    return what;
  }

  function armUndo(out, what) {
    clearTimeout(undoTimer);
    var bar = $('undo-bar');
    bar.dataset.scanId = out.scan_id;
    $('undo-text').textContent = 'Last scan at ' + localTime(out.scanned_at) + ': ' + what +
      ' (undo until ' + localTime(out.undo_until) + ')';
    show(bar, true);
    undoTimer = setTimeout(function () { show(bar, false); }, UNDO_WINDOW_MS);
  }

  $('undo-btn').addEventListener('click', function () {
    var bar = $('undo-bar');
    var url = undoUrl.replace('/0/', '/' + encodeURIComponent(bar.dataset.scanId) + '/');
    if (busy) return;
    busy = true;
    post(url, {}).then(function (res) {
      if (!res.ok) { status(res.data.detail || ('Error ' + res.status), true); return; }
      show(bar, false);
      clearTimeout(undoTimer);
      status('Undone at ' + localTime(res.data.undone_at) + '.', false);
      lookupQuietly();
    }).catch(function () {
      status('No connection. Try undo again.', true);
    }).finally(function () { busy = false; });
  });

  // Camera scanning where the browser has BarcodeDetector (Chrome on Android, Safari 17+
  // behind a flag); everywhere else the typed field or a USB scanner does the job.
  var stream = null;
  var scanning = false;
  if ('BarcodeDetector' in window && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    show($('camera-start'), true);
  }

  function stopCamera() {
    scanning = false;
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
    show($('camera'), false);
    show($('camera-start'), true);
  }

  $('camera-start').addEventListener('click', function () {
    var video = $('camera-video');
    var wanted = ['qr_code', 'pdf417', 'aztec', 'code_128'];
    BarcodeDetector.getSupportedFormats().then(function (formats) {
      var use = wanted.filter(function (f) { return formats.indexOf(f) >= 0; });
      var detector = new BarcodeDetector({ formats: use.length ? use : formats });
      return navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false })
        .then(function (s) {
          stream = s;
          video.srcObject = s;
          show($('camera'), true);
          show($('camera-start'), false);
          scanning = true;
          return video.play().then(function () { detect(detector, video); });
        });
    }).catch(function (err) {
      stopCamera();
      status('Camera not available (' + err.name + '). Type the code or use the scanner.', true);
    });
  });

  function detect(detector, video) {
    if (!scanning) return;
    detector.detect(video).then(function (codes) {
      if (codes.length) {
        var value = codes[0].rawValue;
        stopCamera();
        $('code').value = value;
        lookup(value);
        return;
      }
      setTimeout(function () { detect(detector, video); }, 200);
    }).catch(function () { setTimeout(function () { detect(detector, video); }, 500); });
  }

  $('camera-stop').addEventListener('click', stopCamera);
})();
