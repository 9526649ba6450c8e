use lambda_http::{Error, run, service_fn};
use shared::edge::{config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let deps = remind::Deps {
        store: config::store_from_env(&sdk)?,
        queue: config::queue_from_env(&sdk)?,
    };
    run(service_fn(|req| async {
        Ok::<_, Error>(remind::handle(&deps, req).await)
    }))
    .await
}
