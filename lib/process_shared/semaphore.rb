# frozen_string_literal: true

module ProcessShared
  # A counting semaphore in shared memory.
  #
  #   sem = ProcessShared::Semaphore.new(2)
  #   sem.synchronize { ... }   # at most two processes inside at once
  #
  # Native methods: +wait+, +post+, +try_wait(timeout = nil)+, +synchronize+, +value+, +waiters+, +close+,
  # +closed?+, +inspect+. +try_wait+ without a timeout raises +Errno::EAGAIN+ when the value is 0; with one,
  # +Errno::ETIMEDOUT+ when it expires.
  class Semaphore
    extend Openable

    # An unchecked mutex facade over this semaphore: +lock+ waits, +unlock+ posts, no owner is recorded.
    # @return [SemaphoreMutex]
    def to_mtx
      SemaphoreMutex.new(self)
    end
  end

  # A semaphore whose value is 0 or 1; posting it at 1 raises {ProcessError} and leaves it at 1.
  class BinarySemaphore < Semaphore
  end

  # The mutex facade returned by {Semaphore#to_mtx}.
  class SemaphoreMutex
    include Sleep

    def initialize(semaphore)
      @semaphore = semaphore
    end

    def lock
      @semaphore.wait
      self
    end

    def unlock
      @semaphore.post
      self
    end

    # @return [Boolean] whether the lock was taken (never blocks)
    def try_lock
      @semaphore.try_wait
      true
    rescue Errno::EAGAIN
      false
    end

    # Whether the lock is held (by anyone); does not acquire it.
    def locked?
      @semaphore.value.zero?
    end

    def synchronize
      lock
      begin
        yield
      ensure
        unlock
      end
    end

    def close
      @semaphore.close
    end

    def closed?
      @semaphore.closed?
    end
  end
end
