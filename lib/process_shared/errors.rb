# frozen_string_literal: true

module ProcessShared
  # Base class of every error the gem defines.
  class Error < StandardError; end

  # Ownership misuse: unlocking a lock the calling thread does not hold, re-locking a non-reentrant lock it
  # holds, posting a {BinarySemaphore} above 1.
  class ProcessError < Error; end

  # Any use of an object after +close+.
  class ClosedError < Error; end

  # The process (or thread) that held a lock died holding it. The lock is now held by the caller, who should
  # repair the protected data and unlock. {#pid} names the dead holder.
  class OwnerDeadError < Error
    # @return [Integer, nil] pid of the process that died holding the lock
    attr_reader :pid

    # @param msg [String]
    # @param pid [Integer, nil] pid of the dead holder, when known
    def initialize(msg = "the owner of the lock died holding it", pid: nil)
      super(msg)
      @pid = pid
    end
  end
end
