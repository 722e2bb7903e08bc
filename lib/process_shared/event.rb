# frozen_string_literal: true

module ProcessShared
  # A flag in shared memory that processes wait for (concurrent-ruby's +Event+).
  #
  #   ready = ProcessShared::Event.new
  #   4.times { fork { ready.wait; work } }
  #   prepare
  #   ready.set          # releases all four
  #
  # Native methods: +set+ (releases every waiter; no effect if already set; returns true), +try?+ (sets it
  # if unset; true if this call set it), +reset+ (returns true), +set?+, +wait(timeout = nil)+ (true once
  # set, false if the timeout passed first; a +set+ and +reset+ while it waits still release it), +close+,
  # +closed?+, +inspect+. +wait+ releases the GVL and is interruptible.
  class Event
    extend Openable

    # @!method initialize
    #   A new event, not set (+name:+, +mode:+, +create:+ as in {Named}).
    #   @raise [ArgumentError] if given any argument

    # @!method set
    #   Sets it, releasing every waiter; no effect if it is set already.
    #   @return [true]
    #   @raise [ClosedError] if closed

    # @!method try?
    #   Sets it if it is not set.
    #   @return [Boolean] whether this call set it
    #   @raise [ClosedError] if closed

    # @!method reset
    #   Unsets it.
    #   @return [true]
    #   @raise [ClosedError] if closed

    # @!method set?
    #   @return [Boolean] whether it is set
    #   @raise [ClosedError] if closed

    # @!method wait(timeout = nil)
    #   Waits until it is set (returns at once if it is).
    #   @param timeout [Numeric, nil] seconds (nil: forever)
    #   @return [Boolean] true once set (also if set and reset again meanwhile), false if the timeout passed first
    #   @raise [ArgumentError] for a negative or non-numeric timeout
    #   @raise [ClosedError] if closed

    # @!method close
    #   Releases this process's handle (idempotent); other processes keep the event. Later calls, except
    #   {#closed?} and {#inspect}, raise {ClosedError}.
    #   @return [nil]

    # @!method closed?
    #   @return [Boolean] whether {#close} was called in this process

    # @!method inspect
    #   The useful state (set or not), read without blocking.
    #   @return [String]
  end
end
