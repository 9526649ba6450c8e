use lambda_http::{Error, run, service_fn};
use shared::edge::{config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let deps = status::Deps {
        store: config::store_from_env(&sdk)?,
        profile: config::sender_profile()?,
        codes: config::error_codes(),
    };
    run(service_fn(|req| async {
        Ok::<_, Error>(status::handle(&deps, req).await)
    }))
    .await
}
