"""The portal's blueprints, one per flow."""
