//! Asking the CPU for a cache line ahead of use: the one place bus-core allows `unsafe`.

/// Starts bringing the cache line at `ptr` into this core's cache, so that a read or write a
/// little later does not wait for it (a line another core wrote last takes some hundred
/// nanoseconds to come over). A read prefetch: the write-intent one (`prefetchw`) measured no
/// better here. Does nothing on other architectures than x86-64.
#[inline(always)]
pub(crate) fn line<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: a prefetch is a hint: it never faults and changes no memory, whatever the
    // address (`core::hint`'s prefetch functions, still unstable, are safe for that).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}
