//! The fake model: an answer to any question, one token (a word) at a time.

use std::time::Duration;

use tower_sse::generation::TokenSink;
use tower_sse_core::EventLog;

/// The answer to `question`, in tokens (each word with the space before it).
pub(crate) fn answer_to(question: &str) -> Vec<String> {
    let text = format!(
        "You asked: \"{}\". Here is an answer, one token at a time, as a language model would \
         stream it. Drop the connection halfway and reconnect, here or on another server: the \
         stream resumes after the last token you received, because every token is an event \
         with its own id and sequence number in the log.",
        question.trim()
    );
    text.split(' ')
        .enumerate()
        .map(|(i, word)| {
            if i == 0 {
                word.to_owned()
            } else {
                format!(" {word}")
            }
        })
        .collect()
}

/// Streams `tokens` to `sink`, one per `delay`.
pub(crate) async fn generate<L: EventLog>(
    sink: TokenSink<L>,
    tokens: Vec<String>,
    delay: Duration,
) -> Result<(), String> {
    for token in tokens {
        tokio::time::sleep(delay).await;
        sink.token(&token).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
