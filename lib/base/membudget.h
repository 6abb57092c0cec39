/* membudget — raced's memory bound in bytes ([daemon] memory_limit).
 *
 * R7 bounds the events alive and the pages in flight; a page of many tiny
 * items still costs many times its size once read.  This is the one
 * counter the byte bound is kept on: the fetcher charges the bodies it
 * receives (as they grow) and a page while it is read, the import charges
 * every item it emits (the event's payload and the store's copy of its
 * row) until the item is freed.  Those who start work ask it first:
 *  - a new request starts while the charge is within the admission share
 *    (half of the limit, membudget_admits_start()), so the other half is
 *    room for the pages already on the wire to be read;
 *  - a page is read only when its estimated cost fits under the whole
 *    limit (membudget_fits()); a page that could not fit even alone fails.
 *
 * Memory belongs to the process, so there is one budget a process, like
 * the log; it holds figures only (no I/O, no clock: pure).  The limit is
 * MEMBUDGET_UNLIMITED until someone sets it (unit tests never do).
 * Ownership: whoever charges n bytes releases the same n.
 */
#ifndef RACED_MEMBUDGET_H
#define RACED_MEMBUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMBUDGET_UNLIMITED SIZE_MAX

void membudget_set_limit(size_t limit);
size_t membudget_limit(void);

void membudget_charge(size_t n);
/* More than was charged is a caller's bug; the charge stops at zero. */
void membudget_release(size_t n);

size_t membudget_charged(void);
/* The highest charge since the last membudget_peak_reset(). */
size_t membudget_peak(void);
void membudget_peak_reset(void);
/* Bytes released so far, ever: waiters tell progress by it changing. */
uint64_t membudget_released_total(void);

/* Would charging n more stay within the limit? */
bool membudget_fits(size_t n);
/* May a new request start: is the charge within half of the limit? */
bool membudget_admits_start(void);

/* Give the heap already freed back to the system (after a peak, and when
 * an import ends): glibc's malloc_trim(0), unless the program set its
 * allocator's own (the daemon on mimalloc: daemon/main.c).  Not pure: the
 * one call here that reaches the system. */
void membudget_give_back(void);
void membudget_set_give_back(void (*fn)(void));

#endif
