"""The toolkit's library, in layers that only import downwards: common -> text -> data -> pretrain -> tasks."""
