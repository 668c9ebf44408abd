//! A hello-world `lambda_http` function: what a Rust Lambda costs before it does anything.
//! `make bench` builds it with the same profile as the three functions and measures both.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_req: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello")))
    }))
    .await
}
