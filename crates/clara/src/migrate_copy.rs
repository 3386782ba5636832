//! `clara migrate --from sqlite:PATH --to postgres://…`: moves an embedded
//! installation's database into PostgreSQL (or any store into another).
//!
//! The target is migrated first, then every table is copied in batches with a
//! progress bar (on a terminal). An interrupted copy is resumed by running the
//! same command again. At the end both sides are counted, table by table, and a
//! difference is reported in one sentence with a failing exit code.

use anyhow::{Context, Result, bail};
use clara_store::{CopyProgress, Store, StoreOptions};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::process::ExitCode;

/// Rows per transaction unless `--batch` says otherwise.
pub(crate) const DEFAULT_BATCH: u32 = 500;

/// Copies the database at `from` into the one at `to`.
pub(crate) async fn run(from: &str, to: &str, batch: u32) -> Result<ExitCode> {
    if let Some(path) = clara_store::sqlite_file(from)
        && !path.is_file()
    {
        bail!(
            "the source database {} does not exist; --from must name the SQLite file Clara has been using",
            path.display()
        );
    }
    // The source is only read: its schema must already be current.
    let source = Store::open_url_with(
        from,
        StoreOptions {
            migrate: false,
            ..StoreOptions::default()
        },
    )
    .await
    .context("could not open the source database (--from)")?;
    let target = Store::open_url(to)
        .await
        .context("could not open the target database (--to)")?;
    println!(
        "Copying {} ({}) into {} ({}).",
        source.display_name(),
        source.backend().name(),
        target.display_name(),
        target.backend().name()
    );

    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40.cyan/blue} {pos}/{len} rows  {per_sec}  eta {eta}  {msg}",
    ) {
        bar.set_style(style);
    }
    let copied = source
        .copy_into(&target, batch, &mut |event| match event {
            CopyProgress::Planned { total, done } => {
                bar.set_length(total);
                bar.set_position(done);
                if done > 0 {
                    bar.suspend(|| {
                        println!("Resuming: {done} of {total} rows were copied by an earlier run.");
                    });
                }
            }
            CopyProgress::Table { table, .. } => bar.set_message(table.to_owned()),
            CopyProgress::Copied { rows, .. } => bar.inc(rows),
        })
        .await;
    bar.finish_and_clear();
    let report = copied?;

    for t in &report.tables {
        println!("{:<16} {:>10} rows", t.table, t.target);
    }
    source.close().await;
    target.close().await;
    if let Some(mismatch) = report.mismatch() {
        eprintln!("clara: {mismatch}");
        return Ok(ExitCode::FAILURE);
    }
    let total: u64 = report.tables.iter().map(|t| t.source).sum();
    println!(
        "Copied {} rows now ({total} in all); every table's count matches the source.",
        report.copied_now
    );
    Ok(ExitCode::SUCCESS)
}
