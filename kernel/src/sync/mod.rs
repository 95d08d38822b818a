//! Synchronisation that is safe against interrupt handlers.
//!
//! The kernel runs on one CPU, so the danger of a spin lock is not another
//! CPU but an interrupt: a handler that takes a lock the code it interrupted
//! holds spins forever. [`IrqSafeMutex`] closes that door by keeping
//! interrupts off while it is held; [`queue`] hands bytes from handlers to
//! tasks without any lock at all.

pub mod queue;

use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use spin::{Mutex, MutexGuard};

/// A spin lock for data that interrupt handlers share with the rest of the
/// kernel: interrupts are disabled while it is held, and their previous state
/// comes back when the guard is dropped, so nesting works.
pub struct IrqSafeMutex<T> {
    inner: Mutex<T>,
}

impl<T> IrqSafeMutex<T> {
    pub const fn new(value: T) -> Self {
        Self { inner: Mutex::new(value) }
    }

    /// Disables interrupts, then spins until the lock is free.
    pub fn lock(&self) -> IrqSafeGuard<'_, T> {
        let were_enabled = interrupts::save_and_disable();
        IrqSafeGuard { guard: ManuallyDrop::new(self.inner.lock()), were_enabled }
    }

    /// The lock if it is free, without waiting: for paths that may have
    /// interrupted the holder (a breakpoint), where waiting never ends.
    pub fn try_lock(&self) -> Option<IrqSafeGuard<'_, T>> {
        let were_enabled = interrupts::save_and_disable();
        match self.inner.try_lock() {
            Some(guard) => Some(IrqSafeGuard { guard: ManuallyDrop::new(guard), were_enabled }),
            None => {
                interrupts::restore(were_enabled);
                None
            }
        }
    }

    /// Takes the lock even if it is held, for the fatal paths (panic, fatal
    /// exception) that never return to the holder.
    ///
    /// # Safety
    /// The code holding the lock must never run again, and no other CPU may
    /// be running.
    pub unsafe fn lock_for_fatal_path(&self) -> IrqSafeGuard<'_, T> {
        let were_enabled = interrupts::save_and_disable();
        if self.inner.is_locked() {
            // SAFETY: per this function's contract the holder never runs again.
            unsafe { self.inner.force_unlock() };
        }
        IrqSafeGuard { guard: ManuallyDrop::new(self.inner.lock()), were_enabled }
    }
}

/// Access to an [`IrqSafeMutex`]'s data; interrupts stay off while it lives.
pub struct IrqSafeGuard<'a, T> {
    guard: ManuallyDrop<MutexGuard<'a, T>>,
    were_enabled: bool,
}

impl<T> Deref for IrqSafeGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for IrqSafeGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for IrqSafeGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the spin guard is dropped here, once, and never used again;
        // it must go before interrupts come back, not after this body.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        interrupts::restore(self.were_enabled);
    }
}

/// The CPU's interrupt flag. On the host (unit tests) there is no flag to
/// change: user mode may not execute `cli`.
mod interrupts {
    #[cfg(target_os = "none")]
    pub fn save_and_disable() -> bool {
        let were_enabled = x86_64::instructions::interrupts::are_enabled();
        x86_64::instructions::interrupts::disable();
        were_enabled
    }

    #[cfg(target_os = "none")]
    pub fn restore(were_enabled: bool) {
        if were_enabled {
            x86_64::instructions::interrupts::enable();
        }
    }

    #[cfg(not(target_os = "none"))]
    pub fn save_and_disable() -> bool {
        false
    }

    #[cfg(not(target_os = "none"))]
    pub fn restore(_were_enabled: bool) {}
}

#[cfg(test)]
mod tests {
    use super::IrqSafeMutex;

    #[test]
    fn try_lock_fails_while_held_and_succeeds_after() {
        let mutex = IrqSafeMutex::new(1);
        {
            let mut guard = mutex.lock();
            *guard += 1;
            assert!(mutex.try_lock().is_none());
        }
        assert_eq!(*mutex.try_lock().expect("free again"), 2);
    }

    #[test]
    fn the_fatal_path_takes_a_held_lock_over() {
        let mutex = IrqSafeMutex::new(7);
        let abandoned = mutex.lock();
        core::mem::forget(abandoned);
        // SAFETY: the holder (the forgotten guard) never runs again.
        assert_eq!(*unsafe { mutex.lock_for_fatal_path() }, 7);
    }
}
