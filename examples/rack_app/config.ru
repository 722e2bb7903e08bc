# frozen_string_literal: true

# The example app (examples/rack_app/app.rb); the servers' configs open its named objects after fork.
require_relative "app"

run ExampleApp::App.new
