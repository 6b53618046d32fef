//! A small Chrome DevTools Protocol client, enough to drive headless Chromium from the
//! harness: one WebSocket (RFC 6455, client side, text messages) to the browser endpoint that
//! Chromium writes to `DevToolsActivePort` in its profile when started with
//! `--remote-debugging-port=0`, one page attached in flat session mode, commands answered in
//! order, and the events received meanwhile kept for the caller.
//!
//! Written here rather than pulled in (a WebSocket crate and a CDP crate) because the harness
//! needs a dozen commands over loopback; every read is bounded in time and size.

use std::{
    path::Path,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

/// The bound on one command's round trip.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest message accepted from the browser.
const MAX_MESSAGE: usize = 16 << 20;

/// A WebSocket connection to Chromium's browser target.
#[derive(Debug)]
pub(crate) struct Cdp {
    stream: BufReader<TcpStream>,
    next_id: u64,
    /// Events (messages with a `method` and no `id`) received while waiting for replies.
    events: Vec<Value>,
}

impl Cdp {
    /// Waits (at most `within`) for `profile/DevToolsActivePort` and connects to the browser
    /// endpoint it names.
    pub(crate) async fn connect_to_profile(
        profile: &Path,
        within: Duration,
    ) -> Result<Self, String> {
        let file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + within;
        let (port, path) = loop {
            // Two lines, the port and the browser target's path; a half-written file is
            // read again.
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let mut lines = text.lines();
            if let (Some(Ok(port)), Some(path)) =
                (lines.next().map(str::parse::<u16>), lines.next())
            {
                if path.starts_with('/') {
                    break (port, path.to_owned());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("{} not written within {within:?}", file.display()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Self::connect(port, &path).await
    }

    /// Opens the WebSocket to `ws://127.0.0.1:port/path`.
    async fn connect(port: u16, path: &str) -> Result<Self, String> {
        let handshake = async {
            let stream = TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| format!("devtools port {port}: {e}"))?;
            let _ = stream.set_nodelay(true);
            let mut stream = BufReader::new(stream);
            // The key only has to be 16 bytes in base64; Chromium does not check how they
            // were chosen.
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: dG93ZXItc3NlIGUyZSBrZXk=\r\n\
                 Sec-WebSocket-Version: 13\r\n\r\n"
            );
            stream
                .get_mut()
                .write_all(request.as_bytes())
                .await
                .map_err(|e| format!("devtools handshake: {e}"))?;
            let mut status = String::new();
            stream
                .read_line(&mut status)
                .await
                .map_err(|e| format!("devtools handshake: {e}"))?;
            if !status.starts_with("HTTP/1.1 101") {
                return Err(format!(
                    "devtools handshake answered {:?}",
                    status.trim_end()
                ));
            }
            // The rest of the head, up to the blank line.
            loop {
                let mut line = String::new();
                let n = stream
                    .read_line(&mut line)
                    .await
                    .map_err(|e| format!("devtools handshake: {e}"))?;
                if n == 0 {
                    return Err("devtools closed during the handshake".to_owned());
                }
                if line == "\r\n" {
                    break;
                }
            }
            Ok(stream)
        };
        let stream = tokio::time::timeout(COMMAND_TIMEOUT, handshake)
            .await
            .map_err(|_| format!("devtools handshake took over {COMMAND_TIMEOUT:?}"))??;
        Ok(Self {
            stream,
            next_id: 1,
            events: Vec::new(),
        })
    }

    /// Sends `method` with `params` (to the page of `session`, or to the browser) and
    /// returns its `result`; an `error` answer is an `Err`.
    pub(crate) async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let round_trip = async {
            self.send_text(&message.to_string()).await?;
            loop {
                let text = self.read_message().await?;
                let reply: Value = serde_json::from_str(&text)
                    .map_err(|e| format!("devtools sent something not JSON ({e}): {text:.200}"))?;
                if reply["id"].as_u64() == Some(id) {
                    if let Some(error) = reply.get("error") {
                        return Err(format!("{method}: {error}"));
                    }
                    return Ok(reply["result"].clone());
                }
                if reply.get("method").is_some() {
                    self.events.push(reply);
                }
            }
        };
        tokio::time::timeout(COMMAND_TIMEOUT, round_trip)
            .await
            .map_err(|_| format!("{method}: no answer within {COMMAND_TIMEOUT:?}"))?
    }

    /// Opens a page at `about:blank` and attaches to it; the session id for [`Self::call`].
    pub(crate) async fn new_page(&mut self) -> Result<String, String> {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let target_id = target["targetId"]
            .as_str()
            .ok_or("Target.createTarget gave no targetId")?;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        attached["sessionId"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "Target.attachToTarget gave no sessionId".to_owned())
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value; an
    /// exception is an `Err` with its text.
    pub(crate) async fn evaluate(
        &mut self,
        session: &str,
        expression: &str,
    ) -> Result<Value, String> {
        let result = self
            .call(
                Some(session),
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await?;
        if let Some(exception) = result.get("exceptionDetails") {
            return Err(format!(
                "the page threw: {}",
                exception["exception"]["description"]
                    .as_str()
                    .unwrap_or_else(|| exception["text"].as_str().unwrap_or("?"))
            ));
        }
        Ok(result["result"]["value"].clone())
    }

    /// The events received so far whose method is `method`, for the page of `session`.
    pub(crate) fn events(&self, session: &str, method: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["method"] == method && e["sessionId"] == session)
            .collect()
    }

    async fn send_text(&mut self, text: &str) -> Result<(), String> {
        let payload = text.as_bytes();
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x81); // FIN, text
        match payload.len() {
            n @ 0..=125 => frame.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        // Clients mask every frame (RFC 6455, section 5.3); the key need not be secret here.
        let key = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0x5eed_1234)
            .to_be_bytes();
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        self.stream
            .get_mut()
            .write_all(&frame)
            .await
            .map_err(|e| format!("devtools write: {e}"))
    }

    /// The next whole text message, answering pings on the way.
    async fn read_message(&mut self) -> Result<String, String> {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.read_exact(&mut head).await?;
            let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
            let masked = head[1] & 0x80 != 0;
            let len = match head[1] & 0x7f {
                126 => {
                    let mut n = [0u8; 2];
                    self.read_exact(&mut n).await?;
                    u64::from(u16::from_be_bytes(n))
                }
                127 => {
                    let mut n = [0u8; 8];
                    self.read_exact(&mut n).await?;
                    u64::from_be_bytes(n)
                }
                n => u64::from(n),
            };
            let len = usize::try_from(len)
                .ok()
                .filter(|len| message.len() + len <= MAX_MESSAGE)
                .ok_or_else(|| format!("devtools message over {MAX_MESSAGE} bytes"))?;
            let mut key = [0u8; 4];
            if masked {
                self.read_exact(&mut key).await?;
            }
            let mut payload = vec![0u8; len];
            self.read_exact(&mut payload).await?;
            if masked {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= key[i % 4];
                }
            }
            match opcode {
                0x0..=0x2 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return String::from_utf8(message)
                            .map_err(|_| "devtools sent a message that is not UTF-8".to_owned());
                    }
                }
                0x8 => return Err("devtools closed the connection".to_owned()),
                0x9 => self.send_pong(&payload).await?,
                _ => {} // pong, or reserved: nothing to do
            }
        }
    }

    async fn send_pong(&mut self, payload: &[u8]) -> Result<(), String> {
        let payload = &payload[..payload.len().min(125)];
        let mut frame = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(payload);
        self.stream
            .get_mut()
            .write_all(&frame)
            .await
            .map_err(|e| format!("devtools write: {e}"))
    }

    async fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), String> {
        self.stream
            .read_exact(buf)
            .await
            .map(drop)
            .map_err(|e| format!("devtools read: {e}"))
    }
}
