use lambda_http::{Error, run, service_fn};
use shared::edge::{config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let deps = profile::Deps {
        store: config::store_from_env(&sdk)?,
        profile: config::sender_profile()?,
    };
    run(service_fn(|req| async {
        Ok::<_, Error>(profile::handle(&deps, req).await)
    }))
    .await
}
