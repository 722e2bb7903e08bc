//! The per-object handle on shared memory, and the caller's identity.
//!
//! A [`Region`] is this process's view of an object's bytes. All its bookkeeping is process-local and only
//! touched with the GVL held (every Ruby method call), so plain `Cell`s suffice. `close` hides the bytes
//! at once but unmaps them only when no call in progress still uses them ([`Pin`]): a thread blocked in a
//! wait with the GVL released, or a `synchronize` whose block closes the object, keeps the memory mapped
//! until it is done.
//!
//! Primitives live in 64-byte slots of shared arena chunks ([`Region::slot`]); `SharedMemory` segments
//! get a mapping of their own ([`Region::anonymous`]). Either way the memory is released only in this
//! process: a slot goes back to the arena, which reuses it only if no other process can have it.

use std::cell::{Cell, RefCell};

use magnus::{Error, Ruby};
use process_shared_core::arena::{Arena, Slot};
use process_shared_core::named::{self, Named, NamedError};
use process_shared_core::sync::Wait;
use process_shared_core::sys::shm;
use process_shared_core::sys::SharedMapping;

use crate::helpers::errors;
use crate::helpers::nogvl;

/// What keeps a region's bytes mapped.
enum Backing {
    Own(SharedMapping),
    Slot(Slot),
    Named(Named),
}

pub use crate::helpers::args::NamedSpec;

pub struct Region {
    ptr: Cell<*mut u8>,
    len: usize,
    busy: Cell<u32>,
    backing: RefCell<Option<Backing>>,
    what: &'static str,
}

// SAFETY: a Region is only used by the Ruby thread that holds the GVL (Ruby serialises method calls on
// it); moving it between threads, as Ruby's GC may when freeing, is sound. It is never shared (`!Sync`).
unsafe impl Send for Region {}

impl Region {
    /// Map `len` zeroed shared bytes, for an object that `inspect`s as `what`.
    pub fn anonymous(ruby: &Ruby, len: usize, what: &'static str) -> Result<Region, Error> {
        let m = SharedMapping::anonymous(len).map_err(|e| errors::io(ruby, e, "mmap of shared memory"))?;
        Ok(Region::backed_by(m.as_ptr(), len, Backing::Own(m), what))
    }

    /// A zeroed 64-byte-aligned run of `len <= arena::CHUNK` bytes from the process's shared arena.
    pub fn slot(ruby: &Ruby, len: usize, what: &'static str) -> Result<Region, Error> {
        let slot = Arena::global().alloc(len).map_err(|e| errors::io(ruby, e, "mmap of a shared arena chunk"))?;
        Ok(Region::backed_by(slot.as_ptr(), len, Backing::Slot(slot), what))
    }

    /// The object called `spec.name` (of Ruby class `what`, `len` bytes), created (and then `init`ed, before
    /// any other process can see it) unless it exists. `ProcessShared::IncompatibleError` if the name belongs
    /// to another class or layout; the matching `Errno` for `EEXIST`, `ENOENT`, `EACCES`... Waiting for
    /// another process that holds the object's lock (a creator initialising it) goes through the
    /// interruptible no-GVL helper, so `init` runs without the GVL: it must not touch Ruby objects.
    pub fn named(
        ruby: &Ruby,
        spec: &NamedSpec,
        len: usize,
        what: &'static str,
        mut init: impl FnMut(*mut u8),
    ) -> Result<Region, Error> {
        let class = class_id(what);
        let step = || match named::attach(&spec.name, spec.mode, spec.create, class, len, true, &mut init) {
            Err(NamedError::Io(e)) if e.raw_os_error() == Some(shm::errno::EINTR) => Wait::Interrupted,
            attached => Wait::Done(attached),
        };
        // Attached just as an interrupt came: dropping the handle unmaps it (the object stays for others).
        let attached = nogvl::wait(ruby, step, drop)?;
        let attached =
            attached.ok_or_else(|| errors::internal(ruby, "named object: a wait without a deadline timed out"))?;
        let n = attached.map_err(|e| match e {
            NamedError::Io(e) => errors::io(ruby, e, &format!("opening named object {:?}", spec.name)),
            NamedError::WrongClass(found) => {
                errors::incompatible(ruby, format!("named object {:?} is a {}, not a {what}", spec.name, class_name_of(found)))
            }
            NamedError::WrongSize(found) => {
                errors::incompatible(ruby, format!("named object {:?} is a {what} of {found} bytes, not of {len}", spec.name))
            }
            NamedError::NotOurs => {
                errors::incompatible(ruby, format!("{:?} exists but is not a process_shared object (left alone)", spec.name))
            }
            NamedError::NotRegular(kind) => errors::incompatible(
                ruby,
                format!("{:?} exists but is not a regular file ({kind}): not a process_shared object (left alone)", spec.name),
            ),
            NamedError::Truncated { size, need } => errors::incompatible(
                ruby,
                format!("named object {:?} is truncated: {size} bytes, a {what} of {len} bytes needs {need} (left alone)", spec.name),
            ),
            NamedError::Unfinished { size, need } => errors::incompatible(
                ruby,
                format!(
                    "{:?} is unfinished (zeroed: a creator died, or not ours) and of {size} bytes, not the {need} a {what} \
                     of {len} bytes needs (left alone)",
                    spec.name
                ),
            ),
        })?;
        // With the GVL held again (see `named::share`): one mapping per object in this process.
        let n = named::share(n);
        Ok(Region::backed_by(n.payload(), len, Backing::Named(n), what))
    }

    fn backed_by(ptr: *mut u8, len: usize, backing: Backing, what: &'static str) -> Region {
        Region { ptr: Cell::new(ptr), len, busy: Cell::new(0), backing: RefCell::new(Some(backing)), what }
    }

    /// Let go of the bytes in this process (unmap, or return the slot to the arena).
    fn release(&self) {
        match self.backing.borrow_mut().take() {
            Some(Backing::Slot(slot)) => Arena::global().free(slot),
            Some(Backing::Own(m)) => drop(m),
            Some(Backing::Named(n)) => drop(n),
            None => {}
        }
    }

    /// The bytes' address, or `ClosedError`.
    #[inline]
    pub fn ptr(&self, ruby: &Ruby) -> Result<*mut u8, Error> {
        let p = self.ptr.get();
        if p.is_null() {
            Err(errors::closed(ruby, self.what))
        } else {
            Ok(p)
        }
    }

    /// The bytes' address while this process still maps them, open or closed (for the checks of `close`
    /// and `Drop`: is a lock in there held by a thread of this process?).
    pub fn mapped_ptr(&self) -> Option<*mut u8> {
        match &*self.backing.borrow() {
            Some(Backing::Own(m)) => Some(m.as_ptr()),
            Some(Backing::Slot(slot)) => Some(slot.as_ptr()),
            Some(Backing::Named(n)) => Some(n.payload()),
            None => None,
        }
    }

    /// The usable length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// The object as a `T` for the duration of a call that neither yields nor releases the GVL.
    ///
    /// # Safety
    /// The region must have been created for a `T` (at least `size_of::<T>()` bytes, valid when zeroed or
    /// initialised as a `T`), and the reference must not be kept across anything that can run Ruby code.
    #[inline]
    pub unsafe fn get<T>(&self, ruby: &Ruby) -> Result<&T, Error> {
        let p = self.ptr(ruby)?;
        // SAFETY: per the contract, `p` points to a live `T`, aligned (slots are 64-byte aligned, mappings
        // page aligned).
        Ok(unsafe { &*p.cast::<T>() })
    }

    /// Keep the bytes mapped across a GVL release or a yield, even if the object is closed meanwhile.
    #[inline]
    pub fn pin(&self, ruby: &Ruby) -> Result<Pin<'_>, Error> {
        let p = self.ptr(ruby)?;
        self.busy.set(self.busy.get() + 1);
        Ok(Pin { region: self, ptr: p })
    }

    /// Hide the bytes from further calls; unmap them now if no call in progress uses them, else when the
    /// object is collected (a call in progress may have taken a lock in there meanwhile, which the
    /// object's `Drop` then keeps mapped). Idempotent.
    pub fn close(&self) {
        self.ptr.set(std::ptr::null_mut());
        if self.busy.get() == 0 {
            self.release();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.ptr.get().is_null()
    }

    /// Keep the bytes mapped in this process for good, even after `close` or collection (for a lock that
    /// a thread of this process still holds, whose address the thread-end hook may use).
    pub fn leak(&self) {
        std::mem::forget(self.backing.borrow_mut().take());
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.release();
    }
}

/// A call in progress on a [`Region`]; derefs to the object as long as it lives.
pub struct Pin<'a> {
    region: &'a Region,
    ptr: *mut u8,
}

impl Pin<'_> {
    /// The pinned object as a `T`.
    ///
    /// # Safety
    /// As for [`Region::get`]: the region holds a `T`. The memory stays mapped while the `Pin` lives.
    #[inline]
    pub unsafe fn as_ref<T>(&self) -> &T {
        // SAFETY: mapped while pinned (close defers the unmap), aligned, and a `T` per the contract.
        unsafe { &*self.ptr.cast::<T>() }
    }

    /// The pinned bytes' address.
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        // Closed meanwhile: the bytes stay mapped until the object is collected (see `Region::close`).
        self.region.busy.set(self.region.busy.get() - 1);
    }
}

/// A [`Region`] that holds one primitive `T` (a `#[repr(C)]` core type that is valid when zeroed).
pub struct Shared<T> {
    region: Region,
    _t: std::marker::PhantomData<T>,
}

impl<T> Shared<T> {
    /// A fresh zeroed `T` in a run of shared arena slots (all core primitives are valid as zero bytes).
    pub fn new(ruby: &Ruby, what: &'static str) -> Result<Shared<T>, Error> {
        Ok(Shared { region: Region::slot(ruby, std::mem::size_of::<T>(), what)?, _t: std::marker::PhantomData })
    }

    /// A `T` in an arena slot, or the named object `spec` says: `init` runs on a new one (zeroed) before
    /// anyone else can use it (for a named one without the GVL: it must not touch Ruby objects), and not at
    /// all on a named one that existed.
    pub fn placed(
        ruby: &Ruby,
        what: &'static str,
        spec: Option<&NamedSpec>,
        mut init: impl FnMut(&T),
    ) -> Result<Shared<T>, Error> {
        let Some(spec) = spec else {
            let sh = Shared::new(ruby, what)?;
            init(sh.get(ruby)?);
            return Ok(sh);
        };
        // SAFETY (in the closure): the payload is `size_of::<T>()` zeroed bytes, 64-byte aligned, and every
        // core primitive is valid when zeroed.
        let region = Region::named(ruby, spec, std::mem::size_of::<T>(), what, |p| init(unsafe { &*p.cast::<T>() }))?;
        Ok(Shared { region, _t: std::marker::PhantomData })
    }

    /// The object, for a call that does not yield or release the GVL before it is done with it.
    #[inline]
    pub fn get(&self, ruby: &Ruby) -> Result<&T, Error> {
        // SAFETY: created by `new` for a `T`; the borrow is tied to `&self`, and callers that run Ruby code
        // or release the GVL use `pin` instead (documented rule for this module).
        unsafe { self.region.get::<T>(ruby) }
    }

    /// The object while this process still maps it, open or closed (no Ruby error: for `close` and `Drop`).
    pub fn get_if_mapped(&self) -> Option<&T> {
        // SAFETY: as for `get`: created for a `T`, still mapped, and the borrow does not outlive `&self`.
        self.region.mapped_ptr().map(|p| unsafe { &*p.cast::<T>() })
    }

    /// The object, kept mapped for as long as the returned guard lives.
    #[inline]
    pub fn pin(&self, ruby: &Ruby) -> Result<SharedPin<'_, T>, Error> {
        Ok(SharedPin { pin: self.region.pin(ruby)?, _t: std::marker::PhantomData })
    }

    pub fn close(&self) {
        self.region.close()
    }

    /// See [`Region::leak`].
    pub fn leak(&self) {
        self.region.leak()
    }

    pub fn is_closed(&self) -> bool {
        self.region.is_closed()
    }
}

/// A pinned `T`; see [`Shared::pin`].
pub struct SharedPin<'a, T> {
    pin: Pin<'a>,
    _t: std::marker::PhantomData<T>,
}

impl<T> std::ops::Deref for SharedPin<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the region was created for a `T` (`Shared::new`) and stays mapped while pinned.
        unsafe { self.pin.as_ref::<T>() }
    }
}

/// What every primitive class shares: its handle, and the state `inspect` shows. Gives each class
/// `close`, `closed?` and `inspect` through [`define_lifecycle`].
pub trait Primitive: magnus::TypedData + Sized {
    type Raw;
    fn shared(&self) -> &Shared<Self::Raw>;
    /// The useful state, read without blocking (e.g. `value=1 waiters=0`).
    fn describe(raw: &Self::Raw) -> String;
    /// Whether a thread of this process holds it (a lock): then closing or collecting it keeps the memory
    /// mapped, for the thread-end hook (see `threads`).
    fn held_in_this_process(_raw: &Self::Raw) -> bool {
        false
    }
}

/// Keep the object's memory mapped for good if a thread of this process holds it. For `close` and `Drop`.
pub fn leak_if_held<T: Primitive>(obj: &T) {
    if let Some(raw) = obj.shared().get_if_mapped() {
        if T::held_in_this_process(raw) {
            obj.shared().leak();
        }
    }
}

pub fn close<T: Primitive>(rb_self: &T) {
    leak_if_held(rb_self);
    rb_self.shared().close()
}

pub fn is_closed<T: Primitive>(rb_self: &T) -> bool {
    rb_self.shared().is_closed()
}

pub fn inspect<T: Primitive>(ruby: &Ruby, rb_self: magnus::typed_data::Obj<T>) -> Result<String, Error> {
    use magnus::prelude::*;
    let class = rb_self.class().inspect();
    if rb_self.shared().is_closed() {
        return Ok(format!("#<{class} (closed)>"));
    }
    Ok(format!("#<{class} {}>", T::describe(rb_self.shared().get(ruby)?)))
}

/// Define `close` (idempotent; releases only this process's mapping), `closed?` and `inspect` on a
/// class whose Rust type implements [`Primitive`]. (A macro: magnus's `method!` cannot take a generic.)
macro_rules! define_lifecycle {
    ($class:expr, $t:ty) => {{
        use magnus::{method, prelude::*};
        $class.define_method("close", method!($crate::ruby_api::shared::close::<$t>, 0))?;
        $class.define_method("closed?", method!($crate::ruby_api::shared::is_closed::<$t>, 0))?;
        $class.define_method("inspect", method!($crate::ruby_api::shared::inspect::<$t>, 0))?;
    }};
}
pub(crate) use define_lifecycle;

/// `new(*args)` and `_new_named(name, mode, create, *args)` for a type whose
/// `build(ruby, class, args, Option<&NamedSpec>)` makes the object (anonymous, or named).
macro_rules! constructors {
    ($t:ty) => {
        fn new(ruby: &Ruby, class: RClass, argv: &[Value]) -> Result<Obj<$t>, Error> {
            Self::build(ruby, class, argv, None)
        }

        fn new_named(ruby: &Ruby, class: RClass, argv: &[Value]) -> Result<Obj<$t>, Error> {
            let (spec, rest) = $crate::helpers::args::named_args(ruby, argv)?;
            Self::build(ruby, class, rest, Some(&spec))
        }
    };
}
pub(crate) use constructors;

/// Register methods on a class or module from a table, one entry a Ruby method, in order:
/// `fn "name" => f(arity);` (public), `private fn`, `private function` (a `function!`, no receiver),
/// `singleton fn`, `singleton function`, `private singleton fn`; `constructors;` (singleton `new` and
/// `_new_named` to `T::new` / `T::new_named`, see [`constructors`]) and `lifecycle;` (see
/// [`define_lifecycle`]). Each `f` is a path under `$t` (a type, or `self` for a module's functions). The
/// arity is in parentheses and forwarded as tokens: magnus's `method!` matches `-1`, `0`, `1`... literally.
macro_rules! methods {
    ($c:ident, $t:ident {}) => {};
    ($c:ident, $t:ident { fn $n:literal => $($p:ident)::+ ($($a:tt)+); $($rest:tt)* }) => {
        $c.define_method($n, magnus::method!($t::$($p)::+, $($a)+))?;
        $crate::ruby_api::shared::methods!($c, $t { $($rest)* });
    };
    ($c:ident, $t:ident { private fn $n:literal => $($p:ident)::+ ($($a:tt)+); $($rest:tt)* }) => {
        $c.define_private_method($n, magnus::method!($t::$($p)::+, $($a)+))?;
        $crate::ruby_api::shared::methods!($c, $t { $($rest)* });
    };
    ($c:ident, $t:ident { private function $n:literal => $($p:ident)::+ ($($a:tt)+); $($rest:tt)* }) => {
        $c.define_private_method($n, magnus::function!($t::$($p)::+, $($a)+))?;
        $crate::ruby_api::shared::methods!($c, $t { $($rest)* });
    };
    ($c:ident, $t:ident { singleton fn $n:literal => $($p:ident)::+ ($($a:tt)+); $($rest:tt)* }) => {
        $c.define_singleton_method($n, magnus::method!($t::$($p)::+, $($a)+))?;
        $crate::ruby_api::shared::methods!($c, $t { $($rest)* });
    };
    ($c:ident, $t:ident { singleton function $n:literal => $($p:ident)::+ ($($a:tt)+); $($rest:tt)* }) => {
        $c.define_singleton_method($n, magnus::function!($t::$($p)::+, $($a)+))?;
        $crate::ruby_api::shared::methods!($c, $t { $($rest)* });
    };
    ($c:ident, $t:ident { private singleton fn $n:literal => $($p:ident)::+ ($($a:tt)+); $($rest:tt)* }) => {
        $c.singleton_class()?.define_private_method($n, magnus::method!($t::$($p)::+, $($a)+))?;
        $crate::ruby_api::shared::methods!($c, $t { $($rest)* });
    };
    ($c:ident, $t:ident { constructors; $($rest:tt)* }) => {
        $crate::ruby_api::shared::methods!($c, $t {
            singleton fn "new" => new(-1);
            singleton fn "_new_named" => new_named(-1);
            $($rest)*
        });
    };
    ($c:ident, $t:ident { lifecycle; $($rest:tt)* }) => {
        $crate::ruby_api::shared::define_lifecycle!($c, $t);
        $crate::ruby_api::shared::methods!($c, $t { $($rest)* });
    };
}
pub(crate) use methods;

/// `define_class!(ruby, m, "Name" < superclass, RustType { entries })`: the new RClass.
///
/// It also resolves the wrapped class now: magnus looks a class up lazily (running Ruby code) on its first
/// use, which, if that came during a call with an interrupt due, would see the interrupt as a failed lookup.
macro_rules! define_class {
    ($ruby:expr, $m:expr, $name:literal < $super:expr, $t:ident { $($body:tt)* }) => {{
        use magnus::{prelude::*, TypedData};
        let c = $m.define_class($name, $super)?;
        $crate::ruby_api::shared::methods!(c, $t { $($body)* });
        let _ = <$t as TypedData>::class($ruby);
        c
    }};
}
pub(crate) use define_class;

/// The header's class id of the Ruby class `what` (0 for a name the core does not know: never ours).
fn class_id(what: &str) -> u32 {
    named::Class::from_name(what).map_or(0, named::Class::id)
}

fn class_name_of(id: u32) -> String {
    named::Class::from_id(id).map_or_else(|| format!("object of unknown class {id}"), |c| c.name().to_string())
}
