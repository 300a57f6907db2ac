//! A small HTTP receiver (an actix app on port 0) standing in for a
//! partner's endpoint: it answers the first `fail_first` requests with 500,
//! then 200, and keeps every request (headers and body).

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A received request: its headers (lower-cased names) and body.
pub type Request = (Vec<(String, String)>, String);
/// Requests received so far.
pub type Received = Arc<Mutex<Vec<Request>>>;

/// A running receiver.
pub struct Receiver {
    /// Its URL.
    pub url: String,
    /// Requests received: headers (lower-cased names) and body.
    pub seen: Received,
}

#[derive(Clone)]
struct Sink {
    seen: Received,
    count: Arc<AtomicUsize>,
    fail_first: usize,
}

async fn record(sink: web::Data<Sink>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    sink.seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((headers, String::from_utf8_lossy(&body).into_owned()));
    if sink.count.fetch_add(1, Ordering::SeqCst) < sink.fail_first {
        HttpResponse::InternalServerError().finish()
    } else {
        HttpResponse::Ok().finish()
    }
}

/// Starts a receiver on a loopback port of its own.
pub async fn receiver(fail_first: usize) -> Receiver {
    let seen: Received = Arc::default();
    let sink = web::Data::new(Sink {
        seen: seen.clone(),
        count: Arc::default(),
        fail_first,
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = format!(
        "http://{}/hooks/test",
        listener.local_addr().expect("its address")
    );
    let server = HttpServer::new(move || {
        App::new()
            .app_data(sink.clone())
            .app_data(web::PayloadConfig::default().limit(16 << 20))
            .default_service(web::to(record))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listening")
    .run();
    tokio::spawn(server);
    Receiver { url, seen }
}

/// Waits up to 10 s for `n` requests.
pub async fn wait_for(seen: &Received, n: usize) -> Vec<Request> {
    for _ in 0..100 {
        if seen.lock().unwrap_or_else(PoisonError::into_inner).len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
}
