"""Real time: socket.io namespaces and (later) the WebRTC media relay."""
