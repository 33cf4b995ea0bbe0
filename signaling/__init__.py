"""Real time: the socket.io namespace, presence, call seats and signalling, TURN credentials,
and the WebRTC media relay (``signaling.relay``)."""
