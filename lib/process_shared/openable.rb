# frozen_string_literal: true

module ProcessShared
  # +Klass.open(*args) { |obj| ... }+: a new object, closed after the block; returns the block's value.
  # Without a block it is the same as +new+.
  module Openable
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
