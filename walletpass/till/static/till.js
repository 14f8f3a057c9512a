// The till page: look up a scanned code, then record a purchase (part paid with points),
// add a stamp, redeem a reward or coupon, refund a purchase, and undo the last scan. Everything goes through /till/api/* with the
// session cookie and the CSRF token; the server's answer is the API's ScanOut.
// Every text it writes comes from the page (#till-texts, in the staff's language, from
// walletpass/till/texts.py); amounts, counts, dates and times are formatted with Intl in
// the page's language (data-locale), the shop's currency and decimals (data-digits) and
// the shop's time zone (data-timezone).
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
  var locale = root.dataset.locale || 'en';
  var digits = Number(root.dataset.digits || 2);
  var zone = root.dataset.timezone || 'UTC';
  var amountExample = root.dataset.amountExample || '12.50';
  var TEXTS = JSON.parse($('till-texts').textContent);
  var plurals = new Intl.PluralRules(locale);
  var moneyFormat = new Intl.NumberFormat(locale, { style: 'currency', currency: currency,
    minimumFractionDigits: digits, maximumFractionDigits: digits });
  var countFormat = new Intl.NumberFormat(locale);
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

  // A text of the page's, its %(name)s filled in; a text given per plural form takes the
  // form Intl's plural rules pick for the count vars.n in the page's language.
  function t(key, vars) {
    var text = TEXTS[key];
    vars = vars || {};
    if (typeof text === 'object') text = text[plurals.select(Number(vars.n))] || text.other;
    return text.replace(/%\((\w+)\)s|%%/g, function (m, name) {
      if (!name) return '%';
      var value = vars[name];
      return value === undefined || value === null ? '' : String(value);
    });
  }
  function money(amount) { return moneyFormat.format(Number(amount)); }
  function count(n) { return countFormat.format(Number(n)); }
  function signed(n) { return (n > 0 ? '+' : n < 0 ? '-' : '') + count(Math.abs(n)); }
  // "12 points", "+3 stamps": a count and its noun, the noun agreeing with the count.
  function counted(key, n, shown) {
    return t(key, { n: Math.abs(n), num: shown === undefined ? count(n) : shown });
  }

  // The server gives every time in the shop's time zone, with its offset
  // ("2026-06-30T22:00:00-04:00"): shown in that zone, the counter's date and clock,
  // whatever zone the device running the page is set to.
  function zoned(iso, options) {
    if (!iso) return '';
    try {
      options.timeZone = zone;
      return new Intl.DateTimeFormat(locale, options).format(new Date(iso));
    } catch (e) {  // a zone this browser does not know: the date and clock as written
      return options.timeStyle ? iso.slice(11, 16) : iso.slice(0, 10);
    }
  }
  function localDate(iso) { return zoned(iso, { dateStyle: 'medium' }); }
  function localTime(iso) { return zoned(iso, { timeStyle: 'short' }); }

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
        status(problem(res), true);
        return null;
      }
      render(res.data);
      if (describe) {
        status(describe(res.data), false);
        if (body.action !== 'lookup') armUndo(res.data, undoLabel(body));
      }
      return res.data;
    }).catch(function () {
      status(t('no_connection'), true);
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

  // An error answer's words for the staff (the server's, in the page's language).
  function problem(res) {
    return res.data.message || res.data.detail || t('error_status', { status: res.status });
  }

  // [the figure, its unit] for the balance box.
  function balanceText(out) {
    if (out.balance.points !== null && out.balance.points !== undefined) {
      return [count(out.balance.points), t('points_label', { n: out.balance.points })];
    }
    if (out.balance.stamps !== null && out.balance.stamps !== undefined) {
      var goal = out.member && out.member.stamps_goal;
      return [count(out.balance.stamps) + (goal ? ' / ' + count(goal) : ''),
              t('stamps_label', { n: goal || out.balance.stamps })];
    }
    return ['', ''];
  }

  // The balance in a sentence: "12 points", "3 / 10 stamps".
  function balanceSentence(out) {
    if (out.balance.points !== null && out.balance.points !== undefined) {
      return counted('points', out.balance.points);
    }
    var b = balanceText(out);
    return (b[0] + ' ' + b[1]).trim();
  }

  function render(out) {
    current = out;
    var isMember = out.kind === 'member' && out.member;
    show($('result'), true);
    if (isMember) {
      var m = out.member;
      $('who-name').textContent = m.name || t('member');
      var sub = [];
      if (m.tier) {
        sub.push(m.tier_discount_percent
          ? t('tier_discount', { tier: m.tier, percent: count(m.tier_discount_percent) }) : m.tier);
      }
      if (m.membership_valid_until && !m.membership) {
        sub.push(t('valid_until', { date: localDate(m.membership_valid_until) }));
      }
      $('who-sub').textContent = sub.join(' · ') || t('member');
      renderMembership(m.membership);
    } else if (out.coupon) {
      renderMembership(null);
      var c = out.coupon;
      $('who-name').textContent = c.title;
      $('who-sub').textContent =
        (c.usable_now ? counted('uses_left', c.uses_left) : t('not_usable', { status: c.status })) +
        (c.valid_until ? ' · ' + t('coupon_until', { date: localDate(c.valid_until) }) : '');
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
      var text = localDate(p.at) + ' ' + localTime(p.at) + ' · ' + money(p.amount) +
        ' · ' + p.receipt_id;
      return [text, function () { fillRefund(p); }, t('refund')];
    });
    show($('stamp-btn'), isMember && kind === 'stamps');
    show($('coupon-btn'), !isMember && out.coupon && out.coupon.usable_now);
    fillList('rewards', out.redeemable.rewards, function (r) {
      // A stamp card's reward costs stamps (its goal's) or nothing (one on the way).
      var label = !r.cost ? r.name : t(kind === 'stamps' ? 'reward_cost_stamps' : 'reward_cost_points',
        { name: r.name, cost: count(r.cost) });
      return [label, function () { redeemReward(r); }];
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
    var price = ms.paid ? money(ms.price) : '';
    var until = localDate(ms.valid_until);
    var state = $('membership-state');
    state.className = ms.status === 'active' ? '' : 'inactive';
    state.textContent = {
      pending: t('membership_pending', { price: price }),
      lapsed: t('membership_lapsed', { date: until }),
      active: t(ms.ends_soon ? 'membership_ends_soon' : 'membership_active', { date: until })
    }[ms.status];
    $('membership-benefits').textContent = ms.benefits ? t('benefits', { benefits: ms.benefits }) : '';
    var pay = $('pay-btn');
    pay.textContent = ms.paid ? t('record_payment', { price: price }) : t('renew');
    pay.dataset.amount = ms.paid ? Number(ms.price).toFixed(digits) : '';
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
      button.textContent = d[2] || t('redeem');
      button.addEventListener('click', d[1]);
      li.appendChild(span);
      li.appendChild(button);
      list.appendChild(li);
    });
    show($(id + '-box'), (items || []).length > 0);
  }

  function delta(out) {
    var parts = [];
    if (out.points_delta) parts.push(counted('points', out.points_delta, signed(out.points_delta)));
    if (out.stamps_delta) parts.push(counted('stamps', out.stamps_delta, signed(out.stamps_delta)));
    if (out.rewards_reached && out.rewards_reached.length) {
      parts.push(t('reached', { rewards: out.rewards_reached.join(', ') }));
    }
    return parts.join(', ');
  }

  // Sentences one after another: a space after a Latin full stop, none after a Chinese
  // one (which carries its own space).
  function sentences(parts) {
    return parts.join(' ').replace(/([\u3002\uff01\uff1f]) /g, '$1');
  }

  // What a scan did, in sentences: the change, the points paid, the new balance.
  function outcome(first, out) {
    var d = delta(out);
    var parts = [first];
    if (out.replayed) parts.push(t('already_counted'));
    if (out.discount && Number(out.discount) > 0) parts.push(t('points_paid', { amount: money(out.discount) }));
    if (d) parts.push(t('changes', { changes: d }));
    parts.push(t('balance', { balance: balanceSentence(out) }));
    return sentences(parts);
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
    if (!/^\d+(\.\d{1,2})?$/.test(amount)) { status(t('enter_amount', { example: amountExample }), true); return; }
    // Made once per purchase and kept until it succeeds: a double tap or a retry after a
    // lost connection sends the same receipt id, and the server counts it once.
    var points = $('points-pay').hidden ? '' : $('redeem-points').value.trim();
    if (points && !/^\d+$/.test(points)) { status(t('enter_points'), true); return; }
    var receipt = $('receipt').value.trim() || pendingReceipt || (pendingReceipt = newId('till-'));
    var body = { code: currentCode, action: 'purchase', amount: amount, receipt_id: receipt };
    if (Number(points) > 0) body.redeem_points = Number(points);
    run(body, function (out) {
      return outcome(t('purchase_done', { amount: money(amount) }), out);
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
    if (!receipt) { status(t('enter_receipt'), true); return; }
    if (!/^\d+(\.\d{1,2})?$/.test(amount)) { status(t('enter_amount', { example: amountExample }), true); return; }
    // One refund id per refund, kept until it succeeds: a retry after a lost answer counts
    // once, and a second partial refund of the same receipt is a refund of its own.
    var key = receipt + ' ' + amount;
    if (!pendingRefund || pendingRefund.key !== key) pendingRefund = { key: key, id: newId('rf-') };
    var body = { code: currentCode, action: 'refund', receipt_id: receipt, amount: amount,
                 refund_id: pendingRefund.id };
    run(body, function (out) {
      return outcome(t('refund_done', { amount: money(amount), receipt: receipt }), out);
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
      return t('stamp_done', { balance: balanceSentence(out) });
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
      if (!res.ok) { status(problem(res), true); return; }
      pendingPayment = null;
      var until = localDate(res.data.membership.valid_until);
      var done = amount ? t('payment_done', { amount: money(amount), date: until })
        : t('renewed', { date: until });
      status(res.data.replayed ? sentences([t('already_recorded'), done]) : done, false);
      lookupQuietly();
    }).catch(function () {
      status(t('no_connection'), true);
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
      return t('coupon_done', { title: out.coupon ? out.coupon.title : '' });
    });
  });

  function redeemReward(reward) {
    run({ code: currentCode, action: 'redeem_reward', reward_id: reward.id, receipt_id: newId('rw-') },
      function (out) {
        var parts = [t('reward_done', { name: reward.name })];
        if (out.redemption_code) parts.push(t('reward_code', { code: out.redemption_code }));
        parts.push(t('balance', { balance: balanceSentence(out) }));
        return sentences(parts);
      });
  }

  function redeemMemberCoupon(coupon) {
    run({ code: currentCode, action: 'redeem_coupon', coupon_id: coupon.id }, function () {
      return t('coupon_done', { title: coupon.title });
    }).then(function (out) { if (out) lookupQuietly(); });
  }

  // Redeeming a member's coupon answers with the coupon; show the member's card again.
  function lookupQuietly() {
    post(scanUrl, { code: currentCode, action: 'lookup' }).then(function (res) {
      if (res.ok) render(res.data);
    });
  }

  function undoLabel(body) {
    if (body.action === 'purchase') return t('undo_purchase', { amount: money(body.amount) });
    if (body.action === 'refund') return t('undo_refund', { amount: money(body.amount) });
    var key = { stamp: 'undo_stamp', redeem_reward: 'undo_reward', redeem_coupon: 'undo_coupon' }[body.action];
    return key ? t(key) : body.action;
  }

  function armUndo(out, what) {
    clearTimeout(undoTimer);
    var bar = $('undo-bar');
    bar.dataset.scanId = out.scan_id;
    $('undo-text').textContent = t('undo_bar',
      { time: localTime(out.scanned_at), what: what, until: localTime(out.undo_until) });
    show(bar, true);
    undoTimer = setTimeout(function () { show(bar, false); }, UNDO_WINDOW_MS);
  }

  $('undo-btn').addEventListener('click', function () {
    var bar = $('undo-bar');
    var url = undoUrl.replace('/0/', '/' + encodeURIComponent(bar.dataset.scanId) + '/');
    if (busy) return;
    busy = true;
    post(url, {}).then(function (res) {
      if (!res.ok) { status(problem(res), true); return; }
      show(bar, false);
      clearTimeout(undoTimer);
      status(t('undone', { time: localTime(res.data.undone_at) }), false);
      lookupQuietly();
    }).catch(function () {
      status(t('no_connection_undo'), true);
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
      status(t('camera_unavailable', { reason: err.name }), true);
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
