//! The three channels, each sending losslessly and receiving in tokio tasks, and eventbus
//! through the same harness.

use std::sync::Arc;

use tokio::runtime::{Handle, Runtime};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::bus::BusSide;
use crate::handled::Handled;
use crate::{CAPACITY, Message};

/// A channel's sending side and its receiver tasks.
pub(crate) struct Channel {
    sender: Sender,
    runtime: Handle,
    receivers: Vec<JoinHandle<Receipt>>,
}

enum Sender {
    /// `room`: sends known to fit before `len()` must be asked again (broadcast never waits
    /// by itself: a full channel overwrites its oldest value and receivers see `Lagged`).
    Broadcast {
        tx: broadcast::Sender<Message>,
        room: usize,
    },
    Flume(flume::Sender<Message>),
    AsyncBroadcast(async_broadcast::Sender<Message>),
    /// Ours: its handlers keep their own receipts (no receiver tasks).
    EventBus(BusSide),
}

/// What one receiver saw: every sequence number once and in order, or not.
#[derive(Default)]
struct Receipt {
    last: u64,
    wrong: u64,
}

impl Receipt {
    fn saw(&mut self, seq: u64, handled: &Handled) {
        if seq != self.last + 1 {
            self.wrong += 1;
        }
        self.last = seq;
        handled.hit();
    }
}

impl Channel {
    /// Opens `library`'s channel with `receivers` receiver tasks on `runtime`.
    pub(crate) fn open(
        library: &str,
        receivers: u64,
        runtime: &Runtime,
        handled: &Arc<Handled>,
    ) -> Result<Channel, String> {
        let mut tasks = Vec::new();
        let sender = match library {
            "broadcast" => {
                let (tx, _) = broadcast::channel(CAPACITY);
                for _ in 0..receivers {
                    let (mut rx, handled) = (tx.subscribe(), handled.clone());
                    tasks.push(runtime.spawn(async move {
                        let mut receipt = Receipt::default();
                        loop {
                            match rx.recv().await {
                                Ok((seq, _payload)) => receipt.saw(seq, &handled),
                                Err(broadcast::error::RecvError::Lagged(n)) => receipt.wrong += n,
                                Err(broadcast::error::RecvError::Closed) => return receipt,
                            }
                        }
                    }));
                }
                Sender::Broadcast { tx, room: 0 }
            }
            "flume" => {
                let (tx, rx) = flume::bounded::<Message>(CAPACITY);
                let handled = handled.clone();
                tasks.push(runtime.spawn(async move {
                    let mut receipt = Receipt::default();
                    while let Ok((seq, _payload)) = rx.recv_async().await {
                        receipt.saw(seq, &handled);
                    }
                    receipt
                }));
                Sender::Flume(tx)
            }
            "async-broadcast" => {
                let (tx, rx) = async_broadcast::broadcast::<Message>(CAPACITY);
                for _ in 0..receivers {
                    let (mut rx, handled) = (rx.clone(), handled.clone());
                    tasks.push(runtime.spawn(async move {
                        let mut receipt = Receipt::default();
                        while let Ok((seq, _payload)) = rx.recv_direct().await {
                            receipt.saw(seq, &handled);
                        }
                        receipt
                    }));
                }
                Sender::AsyncBroadcast(tx)
            }
            "eventbus" => Sender::EventBus(BusSide::open(receivers, runtime, handled)?),
            other => return Err(format!("unknown library {other:?}")),
        };
        Ok(Channel {
            sender,
            runtime: runtime.handle().clone(),
            receivers: tasks,
        })
    }

    /// Sends one message, waiting for room when the channel is full.
    pub(crate) fn send(&mut self, message: Message) {
        match &mut self.sender {
            Sender::Broadcast { tx, room } => {
                while *room == 0 {
                    *room = CAPACITY.saturating_sub(tx.len());
                    if *room == 0 {
                        std::thread::yield_now();
                    }
                }
                *room -= 1;
                tx.send(message).expect("receivers are alive");
            }
            Sender::Flume(tx) => tx.send(message).expect("the receiver is alive"),
            Sender::AsyncBroadcast(tx) => {
                tx.broadcast_blocking(message).expect("receivers are alive");
            }
            Sender::EventBus(bus) => bus.send(message),
        }
    }

    /// Closes the channel and waits for the receivers; returns the events that some receiver
    /// missed, saw twice or saw out of order, given that `total` were sent.
    pub(crate) fn close(self, total: u64) -> u64 {
        if let Sender::EventBus(bus) = self.sender {
            return bus.close(total);
        }
        drop(self.sender);
        self.receivers
            .into_iter()
            .map(|task| {
                let receipt = self.runtime.block_on(task).expect("a receiver panicked");
                receipt.wrong + total.abs_diff(receipt.last)
            })
            .sum()
    }
}
