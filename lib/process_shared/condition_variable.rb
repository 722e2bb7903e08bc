# frozen_string_literal: true

module ProcessShared
  # A condition variable in shared memory, used with a {Mutex} or a {Monitor}.
  #
  # Native methods: +wait(lock, timeout = nil)+ (true when woken, false on timeout; the lock is held again
  # on return either way), +signal+ (wakes one waiter), +broadcast+ (wakes all), +waiters+, +close+,
  # +closed?+, +inspect+. A signal with no waiter is not remembered.
  class ConditionVariable
    extend Openable
  end
end
