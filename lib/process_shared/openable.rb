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
        obj.close
      end
    end
  end
end
