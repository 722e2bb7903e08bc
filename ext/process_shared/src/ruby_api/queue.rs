//! `ProcessShared::Queue`: a bounded cross-process FIFO of Marshal dumps in a shared ring buffer. The
//! Ruby side (`lib/process_shared/queue.rb`) dumps and loads; this side moves bytes. Every blocking call
//! releases the GVL; an interrupt that lands just as a push or pop succeeded takes it back (the record is
//! retracted, or put back at the front) before the exception is raised.

use magnus::{prelude::*, typed_data::Obj, Error, RClass, RModule, RString, Ruby, Value};
use process_shared_core::sync::{PopOutcome, PushOutcome, QueueRef, QUEUE_FORMAT, RECORD_HEADER};

use super::shared::{self, NamedSpec, Pin, Region};
use super::threads::me;
use crate::helpers::errors;
use crate::helpers::{args, nogvl};

/// The largest capacity, in bytes (1 GiB).
const CAPACITY_MAX: i64 = 1 << 30;

#[magnus::wrap(class = "ProcessShared::Queue", free_immediately, size)]
pub struct Queue {
    region: Region,
    capacity: usize,
}

struct Held<'a>(Pin<'a>, usize);

impl Held<'_> {
    fn q(&self) -> QueueRef<'_> {
        // SAFETY: the region was mapped for a queue of this length (zeroed, then `init`), stays mapped while
        // pinned, and holds nothing else.
        unsafe { QueueRef::new(self.0.as_ptr(), self.1) }
    }
}

impl Queue {
    /// `_create(capacity, max)`: `capacity` bytes of records, `max` elements (nil: no limit).
    fn create(ruby: &Ruby, class: RClass, capacity: Value, max: Value) -> Result<Obj<Queue>, Error> {
        Self::build(ruby, class, capacity, max, None)
    }

    /// `_create_named(name, mode, create, capacity, max)`.
    fn create_named(ruby: &Ruby, class: RClass, argv: &[Value]) -> Result<Obj<Queue>, Error> {
        let (spec, rest) = args::named_args(ruby, argv)?;
        args::arity(ruby, rest, 2, 2)?;
        Self::build(ruby, class, rest[0], rest[1], Some(&spec))
    }

    fn build(
        ruby: &Ruby,
        class: RClass,
        capacity: Value,
        max: Value,
        spec: Option<&NamedSpec>,
    ) -> Result<Obj<Queue>, Error> {
        let capacity = args::int_in(ruby, capacity, "capacity", 1, CAPACITY_MAX)? as usize;
        let max = if max.is_nil() { 0 } else { args::int_in(ruby, max, "max", 1, i64::MAX)? as u64 };
        let ring = capacity + RECORD_HEADER; // so that one record of `capacity` bytes fits
        let len = QueueRef::size_for(ring).ok_or_else(|| errors::arg(ruby, "capacity too large"))?;
        let what = "ProcessShared::Queue";
        let region = match spec {
            None => Region::anonymous(ruby, len, what)?,
            // SAFETY (in the closure): `len` zeroed bytes, 64-byte aligned, not yet visible to anyone else.
            Some(spec) => Region::named(ruby, spec, len, what, |p| unsafe { QueueRef::new(p, len) }.init(max))?,
        };
        let q = Queue { region, capacity };
        let Some(spec) = spec else {
            q.held(ruby)?.q().init(max);
            return Ok(ruby.obj_wrap_as(q, class));
        };
        // Another layout of the same length (an older header size with a larger ring) is refused before
        // anything in it is believed.
        let (format, found) = (q.held(ruby)?.q().format(), q.held(ruby)?.q().max());
        let name = spec.name.as_str();
        if format != QUEUE_FORMAT {
            return Err(errors::incompatible(
                ruby,
                format!("named Queue {name:?} has queue format {format}, not {QUEUE_FORMAT} (made by another version; left alone)"),
            ));
        }
        if found != max {
            return Err(errors::incompatible(
                ruby,
                format!("named Queue {name:?} has max {found}, not {max} (0: none)"),
            ));
        }
        Ok(ruby.obj_wrap_as(q, class))
    }

    fn held(&self, ruby: &Ruby) -> Result<Held<'_>, Error> {
        Ok(Held(self.region.pin(ruby)?, self.region.len()))
    }

    /// `_push(bytes, non_block, timeout)`: true once enqueued, nil on timeout. `ClosedQueueError` if
    /// closed (also while waiting), `ThreadError` if `non_block` and full, `ArgumentError` if larger than
    /// the capacity.
    fn push(
        ruby: &Ruby,
        rb_self: &Self,
        bytes: RString,
        non_block: bool,
        timeout: Value,
    ) -> Result<Option<bool>, Error> {
        let deadline = args::deadline(args::timeout(ruby, Some(timeout))?);
        // Copied while we hold the GVL: the String may change or go once we release it.
        // SAFETY: the bytes are copied before any Ruby code can run.
        let data = unsafe { bytes.as_slice() }.to_vec();
        let held = rb_self.held(ruby)?;
        let q = held.q();
        if !q.fits_at_all(data.len()) {
            let msg = format!("object dump of {} bytes exceeds the queue capacity of {}", data.len(), rb_self.capacity);
            return Err(errors::arg(ruby, msg));
        }
        let me = me();
        let undo = |out| {
            if let PushOutcome::Pushed(p) = out {
                q.retract(me, p);
            }
        };
        // Fast path with the GVL held (no wait needed); else wait with it released.
        let pushed = match q.try_push(me, &data, non_block) {
            Some(out) => Some(out),
            None => nogvl::wait(ruby, || q.push_step(me, &data, non_block, deadline, true), undo)?,
        };
        match pushed {
            None => Ok(None),
            Some(PushOutcome::Pushed(_)) => Ok(Some(true)),
            Some(PushOutcome::Closed) => Err(errors::closed_queue(ruby)),
            Some(PushOutcome::Full) => Err(Error::new(ruby.exception_thread_error(), "queue full")),
        }
    }

    /// `_pop(non_block, timeout)`: the next record's bytes; nil on timeout or when closed and empty;
    /// `ThreadError` if `non_block` and empty.
    fn pop(ruby: &Ruby, rb_self: &Self, non_block: bool, timeout: Value) -> Result<Option<RString>, Error> {
        let deadline = args::deadline(args::timeout(ruby, Some(timeout))?);
        let held = rb_self.held(ruby)?;
        let q = held.q();
        let me = me();
        let undo = |out: PopOutcome| {
            if let PopOutcome::Item(bytes) = out {
                q.unshift(me, &bytes);
            }
        };
        let popped = match q.try_pop(me, non_block) {
            Some(out) => Some(out),
            None => nogvl::wait(ruby, || q.pop_step(me, non_block, deadline, true), undo)?,
        };
        match popped {
            None | Some(PopOutcome::ClosedEmpty) => Ok(None),
            Some(PopOutcome::Empty) => Err(Error::new(ruby.exception_thread_error(), "queue empty")),
            Some(PopOutcome::Item(bytes)) => Ok(Some(ruby.str_from_slice(&bytes))),
        }
    }

    /// `_unshift(bytes)`: put a popped record back at the front (its object could not be handed over);
    /// false if there is no room any more.
    fn unshift(ruby: &Ruby, rb_self: &Self, bytes: RString) -> Result<bool, Error> {
        // SAFETY: copied before any Ruby code can run.
        let data = unsafe { bytes.as_slice() }.to_vec();
        let held = rb_self.held(ruby)?;
        Ok(held.q().unshift(me(), &data))
    }

    fn size(ruby: &Ruby, rb_self: &Self) -> Result<u64, Error> {
        Ok(rb_self.held(ruby)?.q().len())
    }

    fn is_empty(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        Ok(rb_self.held(ruby)?.q().is_empty())
    }

    fn clear(ruby: &Ruby, rb_self: Obj<Self>) -> Result<Obj<Self>, Error> {
        let held = rb_self.held(ruby)?;
        let (q, me) = (held.q(), me());
        nogvl::wait(ruby, || q.clear(me, true), |()| {})?;
        Ok(rb_self)
    }

    fn close(ruby: &Ruby, rb_self: Obj<Self>) -> Result<Obj<Self>, Error> {
        let held = rb_self.held(ruby)?;
        let (q, me) = (held.q(), me());
        nogvl::wait(ruby, || q.close(me, true), |()| {})?;
        Ok(rb_self)
    }

    /// `closed?`: true once closed (by any process), or once this handle was released (`Queue.open`).
    fn is_closed(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        if rb_self.region.is_closed() {
            return Ok(true);
        }
        Ok(rb_self.held(ruby)?.q().is_closed())
    }

    fn num_waiting(ruby: &Ruby, rb_self: &Self) -> Result<u32, Error> {
        Ok(rb_self.held(ruby)?.q().num_waiting())
    }

    fn max(ruby: &Ruby, rb_self: &Self) -> Result<Option<u64>, Error> {
        Ok(match rb_self.held(ruby)?.q().max() {
            0 => None,
            m => Some(m),
        })
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    /// `_release` (what `Queue.open` does after its block): unmap this process's handle, leaving the queue
    /// open for everyone else (`close` closes it for every process, as `Thread::Queue#close` does).
    /// Nothing is held in there between calls: every call pins the region while it uses it.
    fn release(&self) {
        self.region.close();
    }

    fn inspect(ruby: &Ruby, rb_self: Obj<Self>) -> Result<String, Error> {
        if rb_self.region.is_closed() {
            return Ok(format!("#<{} (released)>", args::class_name(rb_self.as_value())));
        }
        let held = rb_self.held(ruby)?;
        let q = held.q();
        let max = match q.max() {
            0 => "nil".to_string(),
            m => m.to_string(),
        };
        Ok(format!(
            "#<{} size={} capacity={} max={max} closed={} waiting={}>",
            args::class_name(rb_self.as_value()),
            q.len(),
            rb_self.capacity,
            q.is_closed(),
            q.num_waiting()
        ))
    }
}

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    shared::define_class!(ruby, m, "Queue" < ruby.class_object(), Queue {
        private fn "_push" => push(3);
        private fn "_pop" => pop(2);
        private fn "_unshift" => unshift(1);
        private fn "_release" => release(0);
        private singleton fn "_create" => create(2);
        private singleton fn "_create_named" => create_named(-1);
        fn "size" => size(0);
        fn "empty?" => is_empty(0);
        fn "clear" => clear(0);
        fn "close" => close(0);
        fn "closed?" => is_closed(0);
        fn "num_waiting" => num_waiting(0);
        fn "max" => max(0);
        fn "capacity" => capacity(0);
        fn "inspect" => inspect(0);
    });
    Ok(())
}
