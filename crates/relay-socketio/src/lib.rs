//! relay-socketio: work in progress (see the issue tracker).
