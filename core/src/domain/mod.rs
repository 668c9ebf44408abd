//! The functional core: pure data in, data out. Nothing here performs I/O or reads a clock.

pub mod availability;
pub mod dialog;
pub mod effect;
pub mod event;
pub mod handover;
pub mod limits;
pub mod machine;
pub mod message;
pub mod routing;
pub mod session;
pub mod transcript;

pub use availability::{Availability, Conditions, UnavailableReason};
pub use dialog::{Dialog, DialogName};
pub use effect::{BotEvent, Effect, Opened, ProviderOp, Start};
pub use event::{Event, HandoverRequest, Input, Speaker, Turn};
pub use handover::{EndReason, Handover, Trigger};
pub use machine::{Decision, Outcome, Rejection, Reply, decide, started, started_then_cancelled};
pub use message::{Actor, Agent, Message};
pub use session::{Control, Session, State, TimerKind, Timers, UserInfo};
pub use transcript::{TranscriptEntry, render_transcript};
