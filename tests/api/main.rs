//! Black-box tests of the service: a real server on 127.0.0.1:0, generated clients.

mod admin;
mod auth;
mod browser;
mod classify;
mod connections;
mod health;
mod helpers;
mod interfaces;
mod milter;
mod overload;
mod playground;
mod reload;
mod shadow;
mod shutdown;
mod stream;
mod tls;
