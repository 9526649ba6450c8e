use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::edge::{config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let deps = admit::Deps {
        store: config::store_from_env(&sdk)?,
        queue: config::queue_from_env(&sdk)?,
        guests_per_second: config::admit_guests_per_second()?,
    };
    let deps = &deps;
    run(service_fn(|event: LambdaEvent<_>| async move {
        Ok::<_, Error>(admit::handle(deps, event.payload).await)
    }))
    .await
}
