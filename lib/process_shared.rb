# frozen_string_literal: true

# Cross-process concurrency primitives: shared memory, semaphores, mutexes, condition variables, monitors,
# readers-writer locks, queues, atomic integers, counters, events, latches and barriers that live in shared
# memory, work across +fork+, and release the GVL while they wait.
#
# Every object is created in an anonymous shared mapping, so it is shared with the children forked after it
# was created. See the README for examples.
module ProcessShared
end

require "process_shared/version"
require "process_shared/errors"
require "process_shared/process_shared" # the native extension
require "process_shared/openable"
require "process_shared/sleep"
require "process_shared/capped_enumerable"
require "process_shared/shared_memory"
require "process_shared/semaphore"
require "process_shared/mutex"
require "process_shared/monitor"
require "process_shared/monitor_mixin"
require "process_shared/condition_variable"
require "process_shared/atomic_integer"
require "process_shared/counters"
require "process_shared/event"
require "process_shared/count_down_latch"
require "process_shared/barrier"
require "process_shared/read_write_lock"
require "process_shared/queue"
require "process_shared/named"
require "process_shared/named_objects"
require "process_shared/local"
require "process_shared/fork"
