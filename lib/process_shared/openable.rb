# frozen_string_literal: true

module ProcessShared
  # +Klass.open(*args) { |obj| ... }+: a new object, closed after the block; returns the block's value.
  # Without a block it is the same as +new+.
  module Openable
    # @param args [Array] +new+'s arguments (keywords included, such as +name:+)
    # @yieldparam obj [Object] the new object, closed when the block ends (however it ends)
    # @return [Object] the block's value; without a block, the new object (not closed)
    def open(*args, **kwargs)
      obj = new(*args, **kwargs)
      return obj unless block_given?

      begin
        yield obj
      ensure
        release_after_open(obj)
      end
    end

    private

    # What +open+ does with the object after its block: +close+ (this process's handle only).
    def release_after_open(obj)
      obj.close
    end
  end
end
