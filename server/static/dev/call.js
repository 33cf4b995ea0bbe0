// A minimal call client written from docs/protocol.md: one publishing and one subscribing
// RTCPeerConnection to the relay, socket.io for signalling. window.yb exposes state for tests.
"use strict";
const yb = {
  token: null, socket: null, ticketId: null, iceServers: [],
  local: null, screen: null, pub: null, sub: null, tracksByMid: {}, events: [],
};
window.yb = yb;
const $ = (id) => document.getElementById(id);
const status = (text, error = false) => { $("status").textContent = text; $("status").className = error ? "error" : ""; };

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  if (yb.token) headers.Authorization = `Bearer ${yb.token}`;
  const response = await fetch(path, { ...options, headers });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
  return body;
}

function request(event, payload) {
  return yb.socket.timeout(20000).emitWithAck(event, payload).then((ack) => {
    if (ack && ack.error) throw new Error(`${ack.error.code}: ${ack.error.message}`);
    return ack;
  });
}

function waitGathering(pc, ms = 3000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, ms);
  });
}

function preferVp8(transceiver) {
  if (!RTCRtpSender.getCapabilities || !transceiver.setCodecPreferences) return;
  const codecs = RTCRtpSender.getCapabilities("video").codecs;
  const rank = (c) => (/vp8/i.test(c.mimeType) ? 0 : /rtx/i.test(c.mimeType) ? 1 : 2);
  transceiver.setCodecPreferences([...codecs].sort((a, b) => rank(a) - rank(b)));
}

async function publish() {
  if (yb.pub) yb.pub.close();
  const pc = new RTCPeerConnection({ iceServers: yb.iceServers });
  yb.pub = pc;
  const entries = [];
  for (const track of yb.local.getTracks()) {
    entries.push([pc.addTransceiver(track, { direction: "sendonly" }), track.kind === "video" ? "camera" : "microphone"]);
  }
  if (yb.screen) entries.push([pc.addTransceiver(yb.screen.getVideoTracks()[0], { direction: "sendonly" }), "screen"]);
  for (const [t] of entries) if (t.sender.track.kind === "video") preferVp8(t);
  pc.addEventListener("iceconnectionstatechange", () => {
    if (pc === yb.pub && pc.iceConnectionState === "failed") { status("重新连接中…"); publish().catch(fail); }
  });
  await pc.setLocalDescription(await pc.createOffer());
  await waitGathering(pc);
  const sources = {};
  for (const [t, name] of entries) sources[t.mid] = name;
  const answer = await request("publish", { ticket_id: yb.ticketId, type: "offer", sdp: pc.localDescription.sdp, sources });
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
}

async function onOffer(message) {
  if (!yb.sub) {
    const pc = new RTCPeerConnection({ iceServers: yb.iceServers });
    yb.sub = pc;
    pc.addEventListener("track", (event) => show(event.transceiver.mid, event.track));
    pc.addEventListener("iceconnectionstatechange", () => {
      if (pc !== yb.sub || pc.iceConnectionState !== "failed") return;
      status("重新连接中…");
      pc.close();
      yb.sub = null;
      request("resubscribe", { ticket_id: yb.ticketId }).catch(fail);
    });
  }
  for (const t of message.tracks) yb.tracksByMid[t.mid] = t;
  await yb.sub.setRemoteDescription({ type: "offer", sdp: message.sdp });
  await yb.sub.setLocalDescription(await yb.sub.createAnswer());
  await waitGathering(yb.sub);
  await request("subscribe_answer", { ticket_id: message.ticket_id, type: "answer", sdp: yb.sub.localDescription.sdp });
  for (const [mid, info] of Object.entries(yb.tracksByMid)) {
    const element = document.querySelector(`[data-mid="${mid}"]`);
    if (element) { element.dataset.trackId = info.track_id || ""; element.dataset.source = info.source || ""; }
  }
}

function show(mid, track) {
  let figure = document.querySelector(`figure[data-mid="${mid}"]`);
  if (!figure) {
    figure = document.createElement("figure");
    figure.dataset.mid = mid;
    const media = document.createElement(track.kind === "video" ? "video" : "audio");
    media.autoplay = true; media.playsInline = true;
    figure.append(media, document.createElement("figcaption"));
    $("videos").append(figure);
  }
  const info = yb.tracksByMid[mid] || {};
  figure.dataset.trackId = info.track_id || "";
  figure.dataset.source = info.source || "";
  figure.querySelector("figcaption").textContent = `${info.display_name || ""} ${info.source || track.kind}`;
  figure.querySelector("video, audio").srcObject = new MediaStream([track]);
}

// What tests read: per received track, frames decoded (video) or samples received (audio).
yb.stats = async () => {
  const out = {};
  if (!yb.sub) return out;
  for (const t of yb.sub.getTransceivers()) {
    const info = yb.tracksByMid[t.mid];
    if (!info || !info.track_id) continue;
    const report = await t.receiver.getStats();
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      out[info.track_id] = { kind: s.kind, source: info.source, framesDecoded: s.framesDecoded || 0,
        packetsReceived: s.packetsReceived || 0, totalSamplesReceived: s.totalSamplesReceived || 0 };
    });
  }
  return out;
};

yb.shareScreen = async () => {
  yb.screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  await publish();
  status("正在共享屏幕");
};

function fail(error) { console.error(error); status(`出错：${error.message}`, true); }

async function join(event) {
  event.preventDefault();
  status("登录中…");
  const login = await api("/api/auth/login", { method: "POST", body: JSON.stringify({ username: $("username").value, password: $("password").value }) });
  yb.token = login.token;
  yb.ticketId = Number($("ticket").value);
  sessionStorage.setItem("yb-call", JSON.stringify({ token: yb.token, ticketId: yb.ticketId }));
  connect();
}

// A reloaded tab rejoins its call by itself while the ticket is in service.
function resume() {
  const saved = JSON.parse(sessionStorage.getItem("yb-call") || "null");
  if (!saved) return;
  yb.token = saved.token;
  yb.ticketId = saved.ticketId;
  $("ticket").value = saved.ticketId;
  status("重新加入通话…");
  connect();
}

async function connect() {
  try { yb.iceServers = (await api("/api/ice-servers")).ice_servers; } catch (e) { yb.iceServers = []; }
  yb.socket = io({ path: "/socket.io", auth: { token: yb.token }, transports: ["websocket"] });
  yb.socket.onAny((name, payload) => yb.events.push([name, payload]));
  yb.socket.on("subscribe_offer", (m) => onOffer(m).catch(fail));
  yb.socket.on("call_closed", () => {
    status("通话已结束");
    sessionStorage.removeItem("yb-call");
    if (yb.pub) yb.pub.close();
    if (yb.sub) yb.sub.close();
  });
  yb.socket.on("disconnect", () => status("重新连接中…"));
  yb.socket.on("connect", async () => {
    try {
      if (yb.sub) { yb.sub.close(); yb.sub = null; }
      const joined = await request("join", { ticket_id: yb.ticketId });
      status(joined.rejoined ? "已重新加入通话" : "已加入通话");
      if (!yb.local) {
        yb.local = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
        $("local").srcObject = yb.local;
      }
      await publish();
      $("share").disabled = false; $("leave").disabled = false;
      yb.joined = true;
    } catch (error) {
      if (/call_not_open|ticket_not_found|invalid_token|token_expired/.test(error.message)) sessionStorage.removeItem("yb-call");
      fail(error);
    }
  });
}

$("login").addEventListener("submit", (e) => join(e).catch(fail));
resume();
$("share").addEventListener("click", () => yb.shareScreen().catch(fail));
$("leave").addEventListener("click", async () => { await request("leave", { ticket_id: yb.ticketId }); status("已离开"); });
