//! Native work spread over threads: items taken one at a time by whichever worker is free,
//! results handled on the calling thread (which writes files, prints, keeps order-free tallies).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `work` on every item of `items` on `jobs` threads (at least one, at most 64) and hands
/// each item's result to `done` on the calling thread, in the order they finish. An error from
/// `done` stops the workers after the item each is on and is returned; the items not started
/// are skipped.
///
/// Not for wasm (no threads there): the callers are native commands.
pub fn run<T, R, E>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> R + Sync,
    mut done: impl FnMut(&T, R) -> Result<(), E>,
) -> Result<(), E>
where
    T: Sync,
    R: Send,
{
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (sender, results) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, 64) {
            let sender = sender.clone();
            let (next, stop, work) = (&next, &stop, &work);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(k) else { break };
                    if sender.send((k, work(item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let result = results
            .iter()
            .try_for_each(|(k, result)| done(&items[k], result));
        stop.store(true, Ordering::Relaxed);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::run;

    #[test]
    fn every_item_is_done_once_whatever_the_number_of_jobs() {
        let items: Vec<u32> = (0..50).collect();
        for jobs in [0, 1, 3, 100] {
            let mut seen = Vec::new();
            run(
                &items,
                jobs,
                |&i| i * 2,
                |&i, r| -> Result<(), ()> {
                    assert_eq!(r, i * 2);
                    seen.push(i);
                    Ok(())
                },
            )
            .unwrap();
            seen.sort_unstable();
            assert_eq!(seen, items, "jobs {jobs}");
        }
    }

    #[test]
    fn an_error_in_done_stops_the_run_and_is_returned() {
        let items: Vec<u32> = (0..1000).collect();
        let (mut failed, mut called_after_failing) = (false, false);
        let result = run(
            &items,
            2,
            |&i| i,
            |_, r| {
                called_after_failing |= failed;
                failed |= r == 3;
                if r == 3 { Err("stop") } else { Ok(()) }
            },
        );
        assert_eq!(result, Err("stop"));
        assert!(!called_after_failing);
    }
}
