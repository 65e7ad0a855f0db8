//! SIGINT and SIGTERM during a run: the first stops the run with a partial
//! report, a second one exits at once.

/// SIGINT and SIGTERM listeners, registered when created: from then on a
/// signal is never lost, and never kills leakbench with its default action.
pub(super) struct Signals {
    pub(super) interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(super) fn new() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Resolves on the first SIGINT or SIGTERM, naming it.
    pub(super) async fn first(&mut self) -> &'static str {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.interrupt) => "interrupted (SIGINT)",
            _ = recv(&mut self.terminate) => "terminated (SIGTERM)",
        }
    }
}
